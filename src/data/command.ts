/**
 * `str-train data …` sub-commands. The CLI hands over the arguments after `data`:
 *   fashion-mnist --from DIR --out DIR [--train-per-class N] [--val-per-class N] [--force]
 *   synthetic --out DIR --classes K --per-class N --size WxH [--val-per-class N] [--seed S]
 */
import { yargs } from '../util/yargs.js';
import { UserError } from '../util/errors.js';
import { FASHION_MNIST_DEFAULT_DIR, convertFashionMnist } from './fashion-mnist.js';
import { writeSyntheticImageFolder } from './synthetic.js';

export function parseSize(s: string, flag = '--size'): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UserError(`${flag} must look like WIDTHxHEIGHT (e.g. 500x375), got '${s}'`);
  return [Number(m[1]), Number(m[2])];
}

export async function runDataCommand(argv: string[], log?: (line: string) => void): Promise<void> {
  await yargs(argv)
    .scriptName('str-train data')
    .usage('$0 <command> [options]')
    .command(
      'fashion-mnist',
      'convert Fashion-MNIST idx files into an ImageFolder tree of PNGs (out/train from the official train split, out/val from the test split)',
      (y) =>
        y
          .option('from', { type: 'string', default: FASHION_MNIST_DEFAULT_DIR, describe: 'folder with the idx files (gzipped or not)' })
          .option('out', { type: 'string', demandOption: true, describe: 'output folder (gets train/ and val/)' })
          .option('train-per-class', { type: 'number', describe: 'keep the first N train images of each class (default: all 6000)' })
          .option('val-per-class', { type: 'number', describe: 'keep the first N test images of each class (default: all 1000)' })
          .option('force', { type: 'boolean', default: false, describe: 'replace existing out/train and out/val' }),
      async (a) => {
        await convertFashionMnist({
          from: a.from,
          out: a.out,
          trainPerClass: a['train-per-class'],
          valPerClass: a['val-per-class'],
          force: a.force,
          log,
        });
      },
    )
    .command(
      'synthetic',
      'write a synthetic JPEG ImageFolder tree (out/train, out/val) with class-dependent content',
      (y) =>
        y
          .option('out', { type: 'string', demandOption: true, describe: 'output folder (gets train/ and val/)' })
          .option('classes', { type: 'number', demandOption: true, describe: 'number of classes' })
          .option('per-class', { type: 'number', demandOption: true, describe: 'train images per class' })
          .option('val-per-class', { type: 'number', describe: 'val images per class (default: per-class / 5)' })
          .option('size', { type: 'string', default: '500x375', describe: 'nominal WIDTHxHEIGHT; each image varies by ±30 %' })
          .option('seed', { type: 'number', default: 0 })
          .option('quality', { type: 'number', default: 90, describe: 'JPEG quality' }),
      async (a) => {
        await writeSyntheticImageFolder({
          out: a.out,
          classes: a.classes,
          perClass: a['per-class'],
          valPerClass: a['val-per-class'],
          size: parseSize(a.size),
          seed: a.seed,
          quality: a.quality,
          log,
        });
      },
    )
    .demandCommand(1, 'name a data command: fashion-mnist or synthetic')
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UserError(`str-train data: ${msg}`);
    })
    .help()
    .parseAsync();
}
