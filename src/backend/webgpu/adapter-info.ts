// What the project needs to know about a WebGPU adapter, from GPUAdapterInfo alone (pure
// functions, unit-tested with fake adapter infos).

/** The GPUAdapterInfo fields Dawn fills in (strings may be empty). */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

// Software rasterisers Dawn can find: Mesa's llvmpipe (GL) / lavapipe (Vulkan) / softpipe,
// Google's SwiftShader, Microsoft's WARP ("Microsoft Basic Render Driver").
const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b|software rasterizer/i;

/**
 * True for an adapter that computes on the CPU. Dawn marks CPU adapters with isFallbackAdapter
 * where it knows (Vulkan CPU devices); on the OpenGL ES backend it does not (llvmpipe reports
 * isFallbackAdapter false and an empty vendor), so the device and description strings decide too.
 */
export function isSoftwareAdapter(info: AdapterInfoLike): boolean {
  if (info.isFallbackAdapter === true) return true;
  return SOFTWARE.test(`${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`);
}

/** "vendor nvidia, device …, driver …" from the fields that are not empty, for the backend line. */
export function describeAdapter(info: AdapterInfoLike): string {
  const parts: string[] = [];
  if (info.vendor) parts.push(`vendor ${info.vendor}`);
  const device = [info.device, info.architecture].filter((s) => s).join(' / ');
  if (device) parts.push(`device ${device}`);
  if (info.description) parts.push(`driver ${info.description}`);
  return parts.length > 0 ? parts.join(', ') : 'adapter without a name';
}

/** A plain copy of the fields (GPUAdapterInfo exposes them as getters on a native object). */
export function copyAdapterInfo(info: AdapterInfoLike): Required<AdapterInfoLike> {
  return {
    vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '',
    description: info.description ?? '', isFallbackAdapter: info.isFallbackAdapter === true,
  };
}
