import { availableParallelism } from 'node:os';
import { UserError } from '../util/errors.js';
import { loadConfig, renderHelp, wantsHelp } from '../config/load.js';
import { initBackend, releaseBackend } from '../backend/select.js';
import { webgpuMultiDeviceError } from '../backend/webgpu/multi-device.js';
import { runTraining } from '../train/run.js';
import {
  connectCollective,
  launchWorkers,
  mpiDeviceForRank,
  parseDeviceList,
  workerExitCode,
  workerInfo,
  type Collective,
} from '../distributed/index.js';

/**
 * The reference's `python main.py --config X [flags]`: train, or --evaluate, --summary,
 * --dense-conv-model, according to the flags. With `--multigpu a,b,…` this process becomes the
 * launcher of one worker per device (each re-runs this command, see src/distributed/).
 */
export async function trainCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write((await renderHelp()) + '\n');
    return 0;
  }
  const { config, configPath, warnings } = loadConfig(argv);
  const info = workerInfo();
  if (info.rank === 0) for (const w of warnings) process.stderr.write(`str-train: warning: ${w}\n`);

  const devices = config.multigpu ? parseDeviceList(config.multigpu) : [];
  if (config.backend === 'webgpu' && devices.length > 1) throw new UserError(webgpuMultiDeviceError('--multigpu'));
  if (config.distributed === 'local' && info.launcher === 'none' && devices.length > 1) {
    const gpuBackend = config.backend === 'tensorflow' || config.backend === 'auto';
    // workers on a CPU backend share the cores: one wasm thread pool per core, not per worker
    const threads = process.env.STR_TRAIN_WASM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / devices.length)));
    const r = await launchWorkers({
      devices,
      argv: process.argv.slice(2),
      script: process.argv[1],
      checkDevices: gpuBackend ? 'nvidia-smi' : 'none',
      env: { STR_TRAIN_WASM_THREADS: threads },
    });
    return r.exitCode;
  }
  // One device, or a worker: make only that device visible before a GPU backend loads.
  const mpiDevice = config.distributed === 'mpi' ? mpiDeviceForRank() : undefined;
  if (mpiDevice !== undefined) process.env.CUDA_VISIBLE_DEVICES = mpiDevice;
  else if (info.launcher === 'none' && devices.length === 1) process.env.CUDA_VISIBLE_DEVICES = String(devices[0]);

  let collective: Collective | undefined;
  try {
    collective = await connectCollective(config.distributed === 'mpi' ? 'mpi' : 'none');
    const lead = collective.rank === 0;
    // several workers on this machine each need their own GPU, which webgpu cannot select
    const sharedMachineFlag = info.launcher === 'local' ? '--multigpu' : info.launcher === 'mpi' && localWorkers() > 1 ? '--distributed mpi' : undefined;
    await initBackend(config.backend, lead ? (line) => process.stderr.write(line + '\n') : () => {}, { sharedMachineFlag });
    await runTraining({ config, configPath, collective });
    await collective.close();
    return 0;
  } catch (e) {
    if (collective && collective.worldSize > 1) {
      // a worker: say why on stderr (the launcher shows it) and use the exit code it expects
      process.stderr.write(`str-train: ${(e as Error).message}\n`);
      process.exit(workerExitCode(e));
    }
    throw e;
  } finally {
    releaseBackend();
  }
}

/** Ranks mpirun started on this machine (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE; 1 when unknown). */
function localWorkers(): number {
  const n = Number(process.env.OMPI_COMM_WORLD_LOCAL_SIZE);
  return Number.isInteger(n) && n > 0 ? n : 1;
}
