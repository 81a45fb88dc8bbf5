/**
 * What Dawn offers on this machine, independently of str-train's backend selection: for each
 * Dawn instance configuration (its default: Vulkan on Linux; and OpenGL ES, the software path CI
 * uses) and each feature level, the adapter's info (vendor, architecture, device, description),
 * whether it is a fallback (software) adapter, its features and the limits that matter for
 * training. Printed as one JSON object (the GPU check keeps it in adapter.json).
 *
 *   node dist/bench/gpu/adapter.js [--instance default|opengles]
 * (one instance per process: a driver that crashes on one cannot take the other's answer with it)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

interface Adapter {
  info?: Record<string, unknown>;
  features: Iterable<string>;
  limits: Record<string, number>;
  isFallbackAdapter?: boolean;
}
interface Gpu {
  requestAdapter(o?: { featureLevel?: string; powerPreference?: string }): Promise<Adapter | null>;
}

const LIMITS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupsPerDimension',
];

export interface AdapterProbe {
  instance: string;
  featureLevel: string;
  adapter: null | { info: Record<string, unknown>; fallback: boolean; features: string[]; limits: Record<string, number> };
  error?: string;
}

/** Each feature level's adapter on one Dawn instance kind, or null / the error. */
export async function probeAdapters(kind: 'default' | 'opengles'): Promise<AdapterProbe[]> {
  const pkg = 'webgpu'; // an optional dependency: a variable, so that tsc does not resolve it
  const { create, globals } = (await import(pkg)) as { create: (o: string[]) => Gpu; globals: object };
  Object.assign(globalThis, globals);
  // OpenGL ES is the tests' software path (Mesa llvmpipe); on a GPU machine it finds the GPU through EGL
  if (kind === 'opengles') process.env.EGL_PLATFORM ??= 'surfaceless';
  const instances: Array<[string, string[]]> = kind === 'default' ? [['default (Vulkan on Linux)', []]] : [['backend=opengles', ['backend=opengles']]];
  const out: AdapterProbe[] = [];
  for (const [name, options] of instances) {
    let gpu: Gpu;
    try {
      gpu = create(options);
    } catch (e) {
      out.push({ instance: name, featureLevel: '-', adapter: null, error: String((e as Error)?.message ?? e) });
      continue;
    }
    for (const featureLevel of ['core', 'compatibility']) {
      try {
        const a = await gpu.requestAdapter({ featureLevel, powerPreference: 'high-performance' });
        if (!a) {
          out.push({ instance: name, featureLevel, adapter: null });
          continue;
        }
        const info: Record<string, unknown> = {};
        // GPUAdapterInfo's fields are getters on its prototype
        for (const k of ['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize', 'isFallbackAdapter', 'backendType', 'adapterType', 'driverDescription']) {
          const v = (a.info as Record<string, unknown> | undefined)?.[k];
          if (v !== undefined && v !== '') info[k] = v;
        }
        const limits: Record<string, number> = {};
        for (const k of LIMITS) if (typeof a.limits[k] === 'number') limits[k] = a.limits[k];
        out.push({
          instance: name, featureLevel,
          adapter: { info, fallback: Boolean(info.isFallbackAdapter ?? a.isFallbackAdapter), features: [...a.features].sort(), limits },
        });
      } catch (e) {
        out.push({ instance: name, featureLevel, adapter: null, error: String((e as Error)?.message ?? e) });
      }
    }
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  const i = process.argv.indexOf('--instance');
  probeAdapters(i >= 0 && process.argv[i + 1] === 'opengles' ? 'opengles' : 'default').then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      // dawn.node keeps the event loop alive with its instances
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`adapter probe failed: ${(e as Error)?.message ?? e}\n`);
      process.exit(1);
    },
  );
}
