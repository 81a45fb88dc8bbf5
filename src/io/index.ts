/** File formats: everything here works on HostTensor / StateDict and knows nothing about tf. */
export * from './host-tensor.js';
export { writeFileAtomic, writeFileAtomicSync, copyFileAtomic, copyFileAtomicSync, isAtomicTempFile } from './atomic.js';
export {
  readSafetensors,
  readSafetensorsSync,
  writeSafetensors,
  writeSafetensorsSync,
  safetensorsFromBuffer,
  safetensorsToBuffer,
  type SafetensorsContent,
} from './safetensors.js';
export { SummaryWriter, readEventFile, scalarsByTag, type TbEvent, type EventFileContent, type ScalarPoint } from './tensorboard.js';
export { sniffCheckpointFile, sniffCheckpointFormat, type CheckpointFormat } from './formats.js';
export * from './pytorch/index.js';
