// Makes a Dawn adapter tfjs' 'webgpu' backend.
import * as tf from '../../tf.js';
import type { FoundAdapter, GpuDeviceLike } from './dawn.js';

interface WebgpuBackendModule {
  WebGPUBackend: new (device: GpuDeviceLike, adapterInfo: unknown) => tf.KernelBackend;
}

let active: { adapter: FoundAdapter; device: GpuDeviceLike } | undefined;
const released: Array<{ adapter: FoundAdapter; device: GpuDeviceLike }> = [];

// tfjs-backend-webgpu's own factory asks navigator.gpu for an adapter and requests a device with
// the adapter's limits; ours does the same for the adapter already chosen (which may need
// featureLevel 'compatibility', and must be the one the backend line names).
const LIMITS = [
  'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize',
  'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup',
] as const;

function exposeNavigatorGpu(found: FoundAdapter): void {
  Object.assign(globalThis, found.globals);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator == null) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator, 'gpu', { value: found.gpu, configurable: true, writable: true });
}

/**
 * Registers and activates tfjs' 'webgpu' backend on `found` (once per process: a later call with
 * the backend already up only switches back to it).
 */
export async function activateWebgpu(found: FoundAdapter): Promise<void> {
  if (active == null) {
    // WebGPUBackend checks navigator.gpu when constructed; the package registers its kernels
    // (and its own factory, when navigator.gpu exists) on import
    exposeNavigatorGpu(found);
    const name: string = '@tensorflow/tfjs-backend-webgpu'; // optional: tsc must not resolve it
    const mod = (await import(name)) as WebgpuBackendModule;
    const requiredLimits: Record<string, number> = {};
    for (const k of LIMITS) if (found.adapter.limits[k] != null) requiredLimits[k] = found.adapter.limits[k];
    const device = await found.adapter.requestDevice({ requiredLimits });
    const registry = (tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory;
    if (registry.webgpu != null) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new mod.WebGPUBackend(device, found.adapter.info), 1);
    active = { adapter: found, device };
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend failed to initialise');
  await tf.ready();
}

/** The adapter the active webgpu backend runs on. */
export function activeWebgpuAdapter(): FoundAdapter | undefined {
  return active?.adapter;
}

/**
 * Disposes the webgpu backend and drops the Dawn instance, so the process can exit (dawn.node
 * keeps Node's event loop alive while its GPU object is referenced). No-op when never activated.
 */
export function releaseWebgpu(): void {
  if (active == null) return;
  const registry = (tf.engine() as unknown as { registryFactory: Record<string, unknown> }).registryFactory;
  if (registry.webgpu != null) tf.removeBackend('webgpu'); // disposes the backend's buffers
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator != null) delete g.navigator.gpu;
  // Neither device.destroy() nor dropping our references to the device and adapter: with Mesa's
  // GL driver either makes dawn.node abort or crash at process exit.
  released.push(active);
  active = undefined;
}
