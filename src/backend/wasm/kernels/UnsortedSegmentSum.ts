// UnsortedSegmentSum (the gradient of tf.gather) is missing on wasm. It is a ScatterNd of the
// rows of x to their segment ids (ScatterNd adds duplicates); ids outside [0, numSegments) are
// dropped, as in TensorFlow, by taking the cpu path.
import * as tf from '../../../tf.js';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo, UnsortedSegmentSumAttrs } from '@tensorflow/tfjs-core';
import { runOnCpu } from '../cpu-fallback.js';
import { view, withScope, type BackendWasm } from '../ops.js';

export function unsortedSegmentSum(args: { inputs: { x: TensorInfo; segmentIds: TensorInfo }; backend: BackendWasm;
  attrs: UnsortedSegmentSumAttrs }): TensorInfo {
  const { inputs: { x, segmentIds }, backend, attrs: { numSegments } } = args;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array;
  const idRank = segmentIds.shape.length;
  let inRange = x.dtype === 'float32' || x.dtype === 'int32';
  for (let i = 0; i < ids.length && inRange; i++) inRange = ids[i] >= 0 && ids[i] < numSegments;
  const sameLeading = segmentIds.shape.every((d, i) => x.shape[i] === d);
  if (!inRange || !sameLeading) {
    return runOnCpu(tf.UnsortedSegmentSum, backend, { x, segmentIds }, args.attrs as unknown as NamedAttrMap);
  }
  const rowShape = x.shape.slice(idRank);
  return withScope(backend, (s) => {
    const indices = segmentIds.dtype === 'int32' ? segmentIds : s.run('Cast', { x: segmentIds }, { dtype: 'int32' });
    const numRows = ids.length;
    return s.run('ScatterNd', { indices: view(indices, [numRows, 1]), updates: view(x, [numRows, ...rowShape]) },
      { shape: [numSegments, ...rowShape] });
  });
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as KernelFunc,
};
