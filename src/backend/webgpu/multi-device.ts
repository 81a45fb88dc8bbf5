// Why `--multigpu` (one worker per GPU on one machine) cannot run on the webgpu backend.
//
// Each worker must open a different GPU. dawn.node (the `webgpu` package 0.6) gives JavaScript
// exactly one adapter per requestAdapter(): the first one Dawn enumerates for the backend, after
// filtering by the `adapter=<name>` create() option, which matches a substring of the device
// name - and identical GPUs have identical names. It has no index or PCI-bus selector, and
// WebGPU's powerPreference only tells integrated from discrete. Below Dawn, Vulkan offers no
// per-process device mask either: CUDA_VISIBLE_DEVICES is a CUDA runtime variable that NVIDIA's
// Vulkan driver ignores, and the Vulkan loader's VK_LOADER_DEVICE_SELECT / *_ID_FILTER variables
// select by vendor:device id (again equal for identical GPUs). Mesa's device-select layer can
// pick by PCI bus (DRI_PRIME=pci-…), but it is a Mesa package a GPU machine need not carry. So
// every worker would train on the same GPU: refuse instead.
export const WEBGPU_MULTI_DEVICE_REASON =
  'Dawn (the webgpu package) can pick a GPU only by its name, which identical GPUs share, and Vulkan ignores CUDA_VISIBLE_DEVICES, so every worker would use the same GPU';

/** The one-line error for `--backend webgpu` with several workers on one machine. */
export function webgpuMultiDeviceError(flag: string): string {
  return `${flag} with --backend webgpu is not supported: ${WEBGPU_MULTI_DEVICE_REASON}; use --backend tensorflow (tfjs-node-gpu) for several GPUs, or one GPU`;
}
