// Whether the webgpu tests can run here: the optional packages and Dawn's software adapter
// (Mesa llvmpipe through EGL), else a one-line skip reason naming what to install.
import { findSoftwareAdapter } from '../../src/backend/webgpu/dawn.js';

export const WEBGPU_DEBIAN_PACKAGES = 'libegl1 libgles2 libgl1-mesa-dri libegl-mesa0';

/** false when a WebGPU adapter is available, else why not (for test's `skip`). */
export async function webgpuSkipReason(): Promise<string | false> {
  const r = await findSoftwareAdapter();
  if ('found' in r) return false;
  return r.notInstalled
    ? `WebGPU not available: ${r.missing} (npm optional dependencies webgpu and @tensorflow/tfjs-backend-webgpu)`
    : `WebGPU not available: ${r.missing}; install the Debian packages ${WEBGPU_DEBIAN_PACKAGES}`;
}
