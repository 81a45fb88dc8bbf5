// The single entry point for TensorFlow.js in this project.
// tfjs-core's Node bundle ships without gradient definitions; the union package registers them
// (and the cpu backend) as a side effect, so every module imports tf from here.
import '@tensorflow/tfjs';
export * from '@tensorflow/tfjs-core';
