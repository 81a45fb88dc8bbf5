// The GPU check's report (bench/gpu/check.ts): ratios, STRConv ÷ DenseConv, and the issue 11
// goal verdicts computed from the parts' JSON files, and the dry-run labelling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderGpuReport, strDensePairs } from '../../bench/gpu/check.js';
import type { CaseResult, SideResult } from '../../bench/models.js';

function side(medianMs: number, batch: number, memory?: SideResult['memory']): SideResult {
  return { stepMs: [medianMs], medianMs, imagesPerSec: (batch * 1000) / medianMs, peakRssMiB: 1, finite: true, ...(memory ? { memory } : {}) };
}

function gpuCase(arch: CaseResult['arch'], conv: CaseResult['conv'], mode: CaseResult['mode'], oursMs: number, torchMs: number, torchDefaultMs: number, flat = true): CaseResult {
  const batch = 64;
  const ours = side(oursMs, batch, { numTensors: flat ? [300, 300] : [300, 301], gpuMiB: [100, 100], flat });
  const pytorch = side(torchMs, batch);
  const pytorchDefault = side(torchDefaultMs, batch);
  return {
    id: `${arch}@224 b${batch} ${conv} ${mode}`, group: 'gpu', arch, conv, size: 224, batch, mode, classes: 1000, warmup: 2, steps: 15, minSteps: 2, maxSeconds: 20,
    window: 5, torch: true, ours: { webgpu: ours }, pytorch, pytorchDefault,
    ratio: { webgpu: ours.imagesPerSec / pytorch.imagesPerSec }, ratioDefault: { webgpu: ours.imagesPerSec / pytorchDefault.imagesPerSec },
  };
}

function writeParts(dir: string, cases: CaseResult[], tiny: boolean): void {
  const models = {
    benchmark: 'models', quick: false, gpu: true, tiny, complete: true, backends: { webgpu: 'webgpu (NVIDIA H100)' }, skippedBackends: {},
    torch: tiny ? { version: '1.13', threads: 8, device: 'cpu', note: 'NO CUDA' } : { version: '2.11.0', threads: 8, device: 'cuda', gpu: 'NVIDIA H100', cuda: '13.0', cudnn: 91000 },
    rounds: 1, freshWorkers: false, settings: {}, cases,
  };
  writeFileSync(path.join(dir, 'models.json'), JSON.stringify(models));
  writeFileSync(path.join(dir, 'adapter.json'), JSON.stringify({ tiny, nvidiaSmi: tiny ? { error: 'ENOENT' } : { gpus: [{ name: 'NVIDIA H100 80GB HBM3', driver_version: '580.159.04', 'memory.total': '81559 MiB' }] }, strTrainBackend: 'webgpu (NVIDIA H100)' }));
}

test('STRConv ÷ DenseConv pairs each STR case with the Dense case of the same model, size, batch and mode', () => {
  const cases = [
    gpuCase('ResNet50', 'DenseConv', 'train', 400, 100, 50),
    gpuCase('ResNet50', 'STRConv', 'train', 440, 130, 80),
    gpuCase('ResNet50', 'DenseConv', 'eval', 100, 30, 20),
    gpuCase('ResNet50', 'STRConv', 'eval', 125, 33, 22),
    gpuCase('MobileNetV1', 'STRConv', 'train', 300, 60, 60), // no Dense partner: left out
  ];
  const pairs = strDensePairs(cases, 'webgpu');
  assert.deepEqual(pairs.map((p) => p.id), ['ResNet50@224 b64 train', 'ResNet50@224 b64 eval']);
  assert.ok(Math.abs(pairs[0].ours! - 1.1) < 1e-12);
  assert.ok(Math.abs(pairs[0].torch! - 1.3) < 1e-12);
  assert.ok(Math.abs(pairs[0].torchDefault! - 1.6) < 1e-12);
  assert.ok(Math.abs(pairs[1].ours! - 1.25) < 1e-12);
});

test('the report marks the issue 11 goals met / not met from the measured ratios', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-check-report-'));
  try {
    writeParts(dir, [
      // str-train 400 ms vs PyTorch fp32 100 ms: 0.25× (< 0.3, not met); STR/Dense 1.1 (met)
      gpuCase('ResNet50', 'DenseConv', 'train', 400, 100, 50),
      gpuCase('ResNet50', 'STRConv', 'train', 440, 100, 50),
      // MobileNetV1: STR/Dense 1.2 (not met); memory not flat on the STR run
      gpuCase('MobileNetV1', 'DenseConv', 'train', 100, 40, 40),
      gpuCase('MobileNetV1', 'STRConv', 'train', 120, 40, 40, false),
    ], false);
    const md = renderGpuReport(dir, ['feed']);
    assert.match(md, /— NVIDIA H100 80GB HBM3/);
    assert.doesNotMatch(md, /DRY RUN/);
    assert.match(md, /Not run for lack of time: feed/);
    assert.match(md, /ResNet50@224 b64 DenseConv train: str-train ≥ 0\.3× PyTorch strict-fp32 images\/s \| 0\.25× \| \*\*not met\*\*/);
    assert.match(md, /ResNet50@224 b64 train: STRConv step ≤ 1\.15× DenseConv step \| 1\.10× \| \*\*met\*\*/);
    assert.match(md, /MobileNetV1@224 b64 train: STRConv step ≤ 1\.15× DenseConv step \| 1\.20× \| \*\*not met\*\*/);
    assert.match(md, /flat over each configuration's timed steps \| 3 of 4 flat \| \*\*not met\*\*/);
    // the training table: str-train, PyTorch fp32 and default side by side with both ratios
    assert.match(md, /\| ResNet50@224 b64 DenseConv train \| 400\.0 \| 160\.0 \| 100\.0 \| 640\.0 \| 0\.25 \| 50\.0 \| 1280\.0 \| 0\.13 \| 300 → 300 \| 100 → 100 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dry run is labelled, and its speed goals are not judged', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpu-check-report-'));
  try {
    writeParts(dir, [gpuCase('ResNet50', 'DenseConv', 'train', 400, 100, 50), gpuCase('ResNet50', 'STRConv', 'train', 800, 100, 50)], true);
    const md = renderGpuReport(dir);
    assert.match(md, /DRY RUN \(--tiny\)/);
    assert.match(md, /PyTorch ran on the CPU \(no CUDA\)/);
    assert.match(md, /STRConv step ≤ 1\.15× DenseConv step \| 2\.00× \| n\/a \(dry run\)/);
    assert.match(md, /## Correctness on this adapter\n\nNot run\./);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
