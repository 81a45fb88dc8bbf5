/**
 * Bad input to `str-train sweep` is one line on stderr and exit code 2 before anything runs: no
 * sweep folder is created.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cliArgv, tinyConfig, tmpDir, writeYaml } from '../helpers/run.js';

let root: string;
before(() => {
  root = tmpDir('sweep-cli');
  fs.mkdirSync(path.join(root, 'data', 'train', 'a'), { recursive: true });
  writeYaml(path.join(root, 'base.yaml'), tinyConfig(path.join(root, 'data'), { conv_type: 'STRConv', sInit_value: -4, epochs: 2, num_classes: 4 }));
  writeYaml(path.join(root, 'bad.yaml'), { ...tinyConfig('data'), learning_rat: 0.1 });
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function sweep(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, cliArgv(['sweep', '--out', path.join(root, 'out'), ...args]), { cwd: root, timeout: 60_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

const CASES: Array<[string, string[], RegExp]> = [
  ['unknown method', ['--config', 'base.yaml', '--methods', 'dense,lottery', '--targets', '50'], /--methods: unknown method 'lottery'; expected .*dense, str, gmp, dnw, dnw-str-budget/],
  ['target 100', ['--config', 'base.yaml', '--methods', 'dnw', '--targets', '50,100'], /--targets: '100' is not a sparsity in percent strictly between 0 and 100/],
  ['target 0', ['--config', 'base.yaml', '--methods', 'dnw', '--targets', '0'], /--targets: '0' is not/],
  ['target not a number', ['--config', 'base.yaml', '--methods', 'dnw', '--targets', '9O'], /--targets: '9O' is not/],
  ['missing base config', ['--config', 'nope.yaml', '--methods', 'dense'], /nope\.yaml/],
  ['base config with an unknown key', ['--config', 'bad.yaml', '--methods', 'dense'], /bad\.yaml.*learning_rat/],
  ['methods needing targets without any', ['--config', 'base.yaml', '--methods', 'dense,gmp'], /--methods gmp need --targets/],
  ['no config', ['--methods', 'dense'], /needs --config/],
  ['--parallel 0', ['--config', 'base.yaml', '--methods', 'dense', '--parallel', '0'], /--parallel 0: expected a positive integer/],
  ['a per-run option after --', ['--config', 'base.yaml', '--methods', 'dense', '--', '--conv-type', 'DNWConv'], /conv_type is set by the sweep for each run/],
  ['a GMP window that never prunes', ['--config', 'base.yaml', '--methods', 'gmp', '--targets', '50', '--gmp-window', '2,3'], /GMP window 2-3 prunes nothing in a run of 2 epochs/],
  ['a target GMP cannot reach in the window', ['--config', 'base.yaml', '--methods', 'gmp', '--targets', '95', '--gmp-window', '0,1'], /gmp at 95 %.*0\.875 × prune_rate/],
  ['budget without str', ['--config', 'base.yaml', '--methods', 'dnw-str-budget', '--targets', '50'], /dnw-str-budget: needs str|no --target-sparsity/],
];

test('bad input: one line, exit 2, nothing created', async () => {
  const results = await Promise.all(CASES.map(([, args]) => sweep(args)));
  CASES.forEach(([what, , re], i) => {
    const r = results[i];
    assert.equal(r.code, 2, `${what}: exit code (stderr: ${r.stderr})`);
    assert.equal(r.stdout, '', `${what}: nothing on stdout`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${what}: one line, got:\n${r.stderr}`);
    assert.match(lines[0], /^str-train: /, what);
    assert.match(lines[0], re, what);
  });
  assert.equal(fs.existsSync(path.join(root, 'out')), false, 'no sweep folder');
});
