// Finding a WebGPU adapter through Dawn's Node bindings (the optional `webgpu` package, which
// ships a prebuilt dawn.node: nothing is downloaded or compiled at install).
import { createRequire } from 'node:module';
import { copyAdapterInfo, isSoftwareAdapter, type AdapterInfoLike } from './adapter-info.js';

// Only the parts of the WebGPU API used here are typed (the package is optional: tsc must not
// need its types).
export interface GpuDeviceLike {
  destroy(): void;
}
export interface GpuAdapterLike {
  readonly info: AdapterInfoLike;
  readonly limits: Record<string, number>;
  readonly features: ReadonlySet<string>;
  requestDevice(descriptor?: { requiredLimits?: Record<string, number>; requiredFeatures?: string[] }): Promise<GpuDeviceLike>;
}
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power'; featureLevel?: 'core' | 'compatibility' }): Promise<GpuAdapterLike | null>;
}
interface WebgpuPackage {
  create(options: string[]): GpuLike;
  globals: Record<string, unknown>;
}

export interface FoundAdapter {
  gpu: GpuLike;
  adapter: GpuAdapterLike;
  info: Required<AdapterInfoLike>;
  software: boolean;
  /** GPUBufferUsage, GPUMapMode, ...: tfjs-backend-webgpu reads them as globals. */
  globals: Record<string, unknown>;
}

/** An adapter, or why there is none (one short phrase). */
export type AdapterResult = { found: FoundAdapter } | { missing: string; notInstalled?: boolean };

let pkg: Promise<WebgpuPackage> | undefined;

async function loadWebgpu(): Promise<WebgpuPackage> {
  const name: string = 'webgpu'; // a variable: the package is optional, tsc must not resolve it
  pkg ??= import(name) as Promise<WebgpuPackage>;
  return pkg;
}

function cause(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') return 'not installed';
  const line = String(err?.message ?? e).split('\n')[0].trim();
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

/**
 * On Linux Dawn's GPU backend is Vulkan; without the Vulkan loader it prints a warning on every
 * instance. Checking for libvulkan.so.1 first (dlopen through koffi, a dependency already) keeps
 * `--backend auto` quiet on machines without a GPU driver.
 */
function vulkanLoaderMissing(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): unknown };
    koffi.load('libvulkan.so.1');
    return undefined;
  } catch {
    return 'no Vulkan loader (libvulkan.so.1)';
  }
}

/**
 * A hardware adapter on Dawn's native backend for this platform (Vulkan, Metal or D3D12), or why
 * there is none. A software adapter found there (lavapipe, SwiftShader) counts as none.
 */
export async function findHardwareAdapter(): Promise<AdapterResult> {
  let webgpu: WebgpuPackage;
  try {
    webgpu = await loadWebgpu();
  } catch (e) {
    return { missing: `the webgpu package: ${cause(e)}`, notInstalled: true };
  }
  const noLoader = vulkanLoaderMissing();
  if (noLoader) return { missing: noLoader };
  try {
    const gpu = webgpu.create([]);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter == null) return { missing: 'Dawn found no GPU adapter' };
    const info = copyAdapterInfo(adapter.info);
    if (isSoftwareAdapter(info)) return { missing: `only a software adapter (${info.device || info.description})` };
    return { found: { gpu, adapter, info, software: false, globals: webgpu.globals } };
  } catch (e) {
    return { missing: `Dawn: ${cause(e)}` };
  }
}

/**
 * The software adapter for tests: Dawn's OpenGL ES backend on Mesa's llvmpipe through EGL
 * without a display (Debian: libegl1 libgles2 libgl1-mesa-dri libegl-mesa0), which offers WebGPU
 * in compatibility mode only.
 */
export async function findSoftwareAdapter(): Promise<AdapterResult> {
  let webgpu: WebgpuPackage;
  try {
    webgpu = await loadWebgpu();
  } catch (e) {
    return { missing: `the webgpu package: ${cause(e)}`, notInstalled: true };
  }
  // EGL picks its platform from this; without a display server only 'surfaceless' works
  process.env.EGL_PLATFORM ??= 'surfaceless';
  try {
    const gpu = webgpu.create(['backend=opengles']);
    const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
    if (adapter == null) return { missing: 'Dawn found no OpenGL ES adapter (EGL with Mesa)' };
    const info = copyAdapterInfo(adapter.info);
    return { found: { gpu, adapter, info, software: isSoftwareAdapter(info), globals: webgpu.globals } };
  } catch (e) {
    return { missing: `Dawn OpenGL ES: ${cause(e)}` };
  }
}
