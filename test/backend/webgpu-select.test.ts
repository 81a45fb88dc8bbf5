import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../src/tf.js';
import { describeBackend, initBackend, releaseBackend } from '../../src/backend/select.js';
import { copyAdapterInfo, describeAdapter, isSoftwareAdapter } from '../../src/backend/webgpu/adapter-info.js';
import { webgpuMultiDeviceError } from '../../src/backend/webgpu/multi-device.js';
import { UserError } from '../../src/util/errors.js';
import { webgpuSkipReason } from '../helpers/webgpu.js';
import { spawnSync } from 'node:child_process';
import { cliArgs, REPO } from '../distributed/cli-common.js';

const skip = await webgpuSkipReason();

test('software adapters are told apart from GPUs by isFallbackAdapter or their names', () => {
  const llvmpipe = { vendor: '', architecture: '', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL version OpenGL ES 3.2 Mesa 22.3.6', isFallbackAdapter: false };
  assert.equal(isSoftwareAdapter(llvmpipe), true);
  assert.equal(isSoftwareAdapter({ vendor: 'mesa', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', description: 'Mesa 22.3.6' }), true);
  assert.equal(isSoftwareAdapter({ vendor: 'google', architecture: '', device: 'SwiftShader Device (Subzero)', description: 'SwiftShader driver' }), true);
  assert.equal(isSoftwareAdapter({ vendor: 'microsoft', device: 'Microsoft Basic Render Driver', description: '' }), true);
  assert.equal(isSoftwareAdapter({ vendor: 'some-vendor', device: 'Some GPU', isFallbackAdapter: true }), true);
  const h100 = { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100 80GB HBM3', description: 'NVIDIA: 580.95.05 580.95.5.0', isFallbackAdapter: false };
  assert.equal(isSoftwareAdapter(h100), false);
  assert.equal(isSoftwareAdapter({ vendor: 'amd', architecture: 'rdna-3', device: 'AMD Radeon RX 7900 XTX (RADV NAVI31)', description: 'radv Mesa 24.0' }), false);
  assert.equal(describeAdapter(h100), 'vendor nvidia, device NVIDIA H100 80GB HBM3 / hopper, driver NVIDIA: 580.95.05 580.95.5.0');
  assert.equal(describeAdapter({ vendor: '', device: '', description: '' }), 'adapter without a name');
  assert.deepEqual(copyAdapterInfo({ device: 'x' }), { vendor: '', architecture: '', device: 'x', description: '', isFallbackAdapter: false });
});

test('--backend webgpu with several workers per machine is a one-line error saying why', async () => {
  const msg = webgpuMultiDeviceError('--multigpu');
  assert.ok(!msg.includes('\n'));
  assert.match(msg, /^--multigpu with --backend webgpu is not supported: .*identical GPUs share.*CUDA_VISIBLE_DEVICES/);
  await assert.rejects(initBackend('webgpu', () => {}, { sharedMachineFlag: '--multigpu' }), (e: unknown) => e instanceof UserError && e.message === msg);
});

test('str-train --backend webgpu --multigpu 0,1 stops before launching, with one line and a non-zero exit', () => {
  const r = spawnSync(process.execPath, cliArgs(['--arch', 'ResNet18', '--backend', 'webgpu', '--multigpu', '0,1', '--data', '/nonexistent']), { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr, `str-train: ${webgpuMultiDeviceError('--multigpu')}\n`);
});

test('auto never picks a software adapter', { skip }, async () => {
  const lines: string[] = [];
  const r = await initBackend('auto', (l) => lines.push(l));
  assert.notEqual(r.name, 'webgpu');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /webgpu: (no Vulkan loader|Dawn found no GPU adapter|only a software adapter)/);
});

test('--backend webgpu without a GPU uses the software adapter, with a warning and one backend line naming it', { skip }, async () => {
  const lines: string[] = [];
  const r = await initBackend('webgpu', (l) => lines.push(l));
  assert.equal(r.name, 'webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^warning: --backend webgpu: no hardware GPU adapter \(.+\); using the software adapter llvmpipe.*for tests only/);
  assert.match(lines[1], /^backend: webgpu \(as requested; SOFTWARE adapter, for tests only: device llvmpipe[^,]*, driver OpenGL version OpenGL ES 3\.2 Mesa/);
  assert.match(describeBackend(), /^webgpu \(SOFTWARE adapter, device llvmpipe.*; tfjs 4\.22\.0\)$/);
  const y = tf.tidy(() => tf.conv2d(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 1]) as tf.Tensor4D, 1, 1));
  assert.equal((await y.data())[5], 18);
  y.dispose();
  // switching away and back works; the adapter is set up once
  await initBackend('cpu', () => {});
  await initBackend('webgpu', () => {});
  assert.equal(tf.getBackend(), 'webgpu');
  releaseBackend();
});
