/**
 * str-train as a library: the sparse conv types, BatchNorm types, the model registry and the
 * PyTorch-compatible state dict, usable inside any TensorFlow.js program.
 */
export { initBackend, type BackendChoice } from './backend/select.js';
export { Module, Sequential, type NamedParam, type ParamGroup, type TorchLayout } from './nn/module.js';
export {
  ConvBase,
  DenseConv,
  STRConv,
  DNWConv,
  GMPConv,
  TopKConv,
  createConv,
  CONV_TYPES,
  type ConvOptions,
  type ConvTypeName,
  type LayerSparsity,
} from './nn/conv/index.js';
export { strSigmoid } from './nn/conv/str.js';
export { BatchNormBase, LearnedBatchNorm, NonAffineBatchNorm, createBatchNorm, type BatchNormTypeName } from './nn/batchnorm.js';
export { ReLU, MaxPool2d, GlobalAvgPool } from './nn/layers.js';
export {
  prepareSparseInference,
  SPARSE_CROSSOVER,
  type SparseInference,
  type SparseInferenceOptions,
  type PreparedLayer,
  type ConvShapeClass,
} from './nn/sparse/inference.js';
export { foldBatchNorm, packCsr, type BatchNormStats, type CsrConv } from './nn/sparse/pack.js';
export { convBn, type FusedEval } from './nn/fused-eval.js';
export { stateDict, loadStateDict, MODULE_PREFIX, type LoadReport } from './nn/state-dict.js';
export { createModel, registerModel, listModels, type ModelFactory } from './models/registry.js';
export { Model } from './models/model.js';
export { DEFAULT_MODEL_OPTIONS, type ModelOptions } from './models/builder.js';
export { modelSummary, formatSummary, type ModelSummary, type SummaryRow } from './sparsity/summary.js';
export { layerStats, totalSparsity, type LayerStat } from './sparsity/stats.js';
export { pruneCount } from './sparsity/topk-mask.js';
export { Optimizer, type OptimizerOptions } from './train/optimizer.js';
export { learningRate, stepLearningRate, lrSchedule, type LrPolicy, type LrGranularity, type LrAt } from './train/schedules.js';
export { crossEntropy } from './train/loss.js';
export type { HostTensor, StateDict } from './io/host-tensor.js';
export { saveSparseCheckpoint, sparsePathOf, type SparseCheckpointInfo } from './train/sparse-checkpoint.js';
export { readCheckpoint, saveCheckpoint, type CheckpointContent, type CheckpointMeta } from './train/checkpoint.js';
export { toLayersModel } from './export/tfjs-model.js';
export { saveLayersModel, type Quantization } from './export/tfjs-files.js';
export { predict, type Prediction, type PredictOptions } from './predict/predict.js';
