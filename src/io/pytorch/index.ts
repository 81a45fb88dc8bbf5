/** PyTorch checkpoints (.pth / .state) read and written without Python. */
export { PyDict, PyTuple, isHostTensor, pyGet, pyNumber, pyTypeName, toPyInt, type PyValue } from './py-values.js';
export {
  readTorchCheckpoint,
  readTorchCheckpointBuffer,
  readTorchCheckpointInfo,
  type TorchCheckpointInfo,
  type TorchFileFormat,
} from './read.js';
export {
  writeTorchCheckpoint,
  writeTorchCheckpointSync,
  torchCheckpointBuffer,
  torchArchiveName,
  type TorchWriteOptions,
} from './write.js';
export { extractStateDict, stateDictToPy, type ExtractedCheckpoint, type MetaValue } from './state-dict.js';
