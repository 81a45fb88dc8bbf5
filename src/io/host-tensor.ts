/**
 * A tensor living in host memory, in PyTorch layout (e.g. conv weights OIHW). This is the
 * currency of every file format in io/ (safetensors, torch .pth, TensorBoard never sees it):
 * nothing in io/ knows about tf.Tensor or the nn module tree.
 */
export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

export type HostData =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array // raw bits of float16 / bfloat16
  | BigInt64Array;

export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: HostData;
}

/** Ordered map name -> tensor (insertion order = PyTorch state_dict order). */
export type StateDict = Map<string, HostTensor>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
