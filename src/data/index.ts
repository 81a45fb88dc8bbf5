/** Data pipeline: ImageFolder scanning, sharp decoding, Pillow-exact transforms, streaming batches. */
export { type Batch, type DataLoader, type LoaderStats, ImageFolderLoader } from './loader.js';
export { type DataOptions, type Datasets, type ValDataset, DATASET_SETS, createDatasets, createValDataset, datasetRoot } from './datasets.js';
export { runDataCommand } from './command.js';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DEFAULT_DIR, convertFashionMnist } from './fashion-mnist.js';
export { writeSyntheticImageFolder } from './synthetic.js';
export { IMG_EXTENSIONS, scanImageFolder } from './scan.js';
export { IMAGENET_MEAN, IMAGENET_STD } from './transforms.js';
