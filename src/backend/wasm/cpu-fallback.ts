// Correct-but-slow path for configurations the fast wasm kernels do not cover (e.g. unequal
// strides): copy the inputs to the cpu backend, run its kernel, copy the result back.
import * as tf from '../../tf.js';
import type { KernelBackend, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from './ops.js';

export function runOnCpu(kernelName: string, backend: BackendWasm, inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap): TensorInfo {
  const cpu = tf.findBackend('cpu') as (KernelBackend & { firstUse?: boolean }) | null;
  const kernel = tf.getKernel(kernelName, 'cpu');
  if (cpu == null || kernel == null) throw new Error(`no cpu kernel ${kernelName} to fall back to`);
  cpu.firstUse = false; // the cpu backend's "install tfjs-node" banner is not for us
  const cpuInputs: Record<string, TensorInfo> = {};
  try {
    for (const [name, t] of Object.entries(inputs)) {
      cpuInputs[name] = { dataId: cpu.write(backend.readSync(t.dataId), t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
    }
    const out = kernel.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs }) as TensorInfo;
    try {
      return backend.makeOutput(out.shape, out.dtype, undefined, cpu.readSync(out.dataId));
    } finally {
      cpu.disposeData(out.dataId);
    }
  } finally {
    for (const t of Object.values(cpuInputs)) cpu.disposeData(t.dataId);
  }
}
