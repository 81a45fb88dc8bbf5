// Which backends can read a tensor back synchronously (dataSync). tfjs-backend-webgpu's
// readSync needs OffscreenCanvas, which Node lacks: on webgpu every read must be awaited.
import * as tf from '../tf.js';

export function backendReadsSynchronously(): boolean {
  return tf.getBackend() !== 'webgpu';
}
