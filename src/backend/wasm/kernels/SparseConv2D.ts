// The sparse inference convolution (fused-kernels.ts SparseConv2D) on wasm: native sparse_conv
// over all native worker threads (native/workers.ts).
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { SparseConv2D, type SparseConv2DAttrs } from '../../fused-kernels.js';
import { SPARSE_TILE } from '../../../nn/sparse/pack.js';
import { heapBuffer, withScratch } from '../native/native.js';
import { nativeWorkersOf } from '../native/workers.js';
import { Scope, type BackendWasm } from '../ops.js';

interface Args { inputs: Record<string, TensorInfo | undefined>; backend: BackendWasm; attrs: NamedAttrMap }

function sparseConv2D({ inputs, backend, attrs }: Args): TensorInfo {
  const { x, rowptr, nz, bias, residual } = inputs;
  const { kernelSize: K, stride: S, padding: pad, outChannels: CO, relu } = attrs as unknown as SparseConv2DAttrs;
  if (x!.dtype !== 'float32') throw new Error(`${SparseConv2D}: x must be float32, got ${x!.dtype}`);
  const [N, H, W, C] = x!.shape;
  const OH = Math.floor((H + 2 * pad - K) / S) + 1, OW = Math.floor((W + 2 * pad - K) / S) + 1;
  if (residual != null && residual.shape.join() !== [N, OH, OW, CO].join()) {
    throw new Error(`${SparseConv2D}: residual shape ${residual.shape} is not [${[N, OH, OW, CO]}]`);
  }
  const s = new Scope(backend);
  const out = backend.makeOutput([N, OH, OW, CO], 'float32');
  if (N * OH * OW === 0 || CO === 0) return out;
  const pool = nativeWorkersOf(backend);
  const threads = pool?.threads ?? 1;
  // per thread: the tile's im2col block, 4 accumulator rows, 3 index rows (kernels.c sparse_conv)
  const stride = (K * K * C * SPARSE_TILE + 4 * SPARSE_TILE + 3 * SPARSE_TILE) * 4;
  const padded = (stride + 63) & ~63;
  withScratch(backend, [16, padded * threads], ([counter, scratch]) => {
    new Int32Array(heapBuffer(backend), counter, 1)[0] = 0;
    const args = [s.addr(x!), N, H, W, C, OH, OW, K, K, S, S, pad, pad, s.addr(rowptr!), s.addr(nz!), s.addr(bias!),
      residual ? s.addr(residual) : 0, s.addr(out), CO, relu ? 1 : 0, counter, scratch];
    if (pool) pool.run('sparse_conv', args, args.length - 1, padded);
    else s.native.sparse_conv(...(args as Parameters<typeof s.native.sparse_conv>));
  });
  return out;
}

export const sparseConv2DConfig: KernelConfig = {
  kernelName: SparseConv2D,
  backendName: 'wasm',
  kernelFunc: sparseConv2D as unknown as KernelFunc,
};
