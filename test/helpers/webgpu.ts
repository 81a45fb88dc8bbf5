// Whether the webgpu tests can run here: the optional packages and a Dawn adapter — the GPU's
// where there is one (the GPU check runs these tests there), else the software adapter (Mesa
// llvmpipe through EGL, as in CI) — or a one-line skip reason naming what to install.
import { findHardwareAdapter, findSoftwareAdapter } from '../../src/backend/webgpu/dawn.js';

export const WEBGPU_DEBIAN_PACKAGES = 'libegl1 libgles2 libgl1-mesa-dri libegl-mesa0';

/** false when a WebGPU adapter is available, else why not (for test's `skip`). */
export async function webgpuSkipReason(): Promise<string | false> {
  if ('found' in (await findHardwareAdapter())) return false;
  const r = await findSoftwareAdapter();
  if ('found' in r) return false;
  return r.notInstalled
    ? `WebGPU not available: ${r.missing} (npm optional dependencies webgpu and @tensorflow/tfjs-backend-webgpu)`
    : `WebGPU not available: ${r.missing}; install the Debian packages ${WEBGPU_DEBIAN_PACKAGES}`;
}
