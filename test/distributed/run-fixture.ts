// Spawns the fixtures next to this file with the same extension: .ts under tsx, .js in dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}${EXT}`, import.meta.url));
}

/** node arguments running a fixture (tsx loader for .ts). */
export function nodeArgs(name: string): string[] {
  return EXT === '.ts' ? ['--import', 'tsx', fixturePath(name)] : [fixturePath(name)];
}

export interface FixtureRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `node <fixture>` with extra env; kills it (and fails) after timeoutMs. */
export function startFixture(name: string, env: NodeJS.ProcessEnv, timeoutMs = 50_000): { child: ChildProcess; done: Promise<FixtureRun> } {
  return startCommand(process.execPath, nodeArgs(name), env, timeoutMs);
}

export function startCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 50_000): { child: ChildProcess; done: Promise<FixtureRun> } {
  const t0 = performance.now();
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  const done = new Promise<FixtureRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not finish within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
  return { child, done };
}

/** Launches `worker` through the launch fixture (launchWorkers) on the given device list. */
export function launch(devices: string, worker: string, workerCfg: object, extra: { argv?: string[]; timeoutMs?: number } = {}) {
  return startFixture(
    'launch',
    { STR_DIST_LAUNCH: JSON.stringify({ devices, worker, argv: extra.argv }), STR_DIST_FIXTURE: JSON.stringify(workerCfg) },
    extra.timeoutMs,
  );
}
