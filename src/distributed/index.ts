export * from './collective.js';
export { LocalCollective, connectLocal, socketPath, type LocalOptions } from './local.js';
export { MpiCollective, initMpi, type MpiOptions, type MpiSumMode } from './mpi.js';
export * from './launcher.js';
export * from './connect.js';
export * from './gradients.js';
