/**
 * `str-train predict --checkpoint X IMAGE_OR_DIR... [--top-k 5] [--json] [--batch-size 32]`.
 * Exit status: 0 when every image was classified, 1 when some could not be read or decoded
 * (each named on stderr, or as an {file, error} entry with --json), 2 for a usage error or an
 * unreadable checkpoint.
 */
import { MODEL_FLAGS, modelOverrides, parseFlags, useBackend } from './export.js';
import { predict, type Prediction } from '../predict/predict.js';
import { UserError } from '../util/errors.js';

export const PREDICT_USAGE = `usage: str-train predict --checkpoint FILE IMAGE_OR_DIR... [--top-k K] [--json] [--batch-size N]
                        [--backend B] [--arch A] [--conv-type T] [--stem S] [--image-size N]

Prints the top-K classes (default 5) with their softmax probabilities for each image, after the
validation transform of the checkpoint's run (resize the shorter side to val_resize, centre crop
image_size, ImageNet mean/std). Folders are searched recursively for ${'.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp'}.
Classes are named by the class folders of the training data (checkpoints from before names were
recorded print indices). The checkpoint may be a full, compact (.sparse.safetensors) or reference one.
  text     one line per image: FILE<TAB>class (p %), class (p %), ...; unreadable images on stderr
  --json   one JSON array: {file, top: [{index, class, probability}]} or {file, error}
Exit status: 0 all images classified, 1 some could not be read or decoded, 2 usage/checkpoint error.`;

function textLine(p: Prediction): string {
  return `${p.file}\t${p.top!.map((t) => `${t.class} (${(100 * t.probability).toFixed(2)} %)`).join(', ')}`;
}

export async function predictCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('predict', argv, {
    ...MODEL_FLAGS,
    checkpoint: { type: 'string' },
    'top-k': { type: 'string' },
    'batch-size': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(PREDICT_USAGE + '\n');
    return 0;
  }
  const checkpoint = values.checkpoint as string | undefined;
  if (!checkpoint) throw new UserError('predict: needs --checkpoint FILE');
  if (positionals.length === 0) throw new UserError('predict: needs at least one image file or folder');
  const int = (flag: string, v: unknown, d: number) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UserError(`predict --${flag} ${String(v)}: expected an integer >= 1`);
    return n;
  };
  const topK = int('top-k', values['top-k'], 5);
  const batchSize = int('batch-size', values['batch-size'], 32);
  const json = values.json === true;
  // inference is real work here: the fastest npm-only backend by default
  await useBackend('predict', values.backend ?? 'wasm');
  const results = await predict({
    checkpoint,
    inputs: positionals,
    topK,
    batchSize,
    overrides: modelOverrides('predict', values),
    onResults: json
      ? undefined
      : (ps) => {
          for (const p of ps) {
            if (p.error) process.stderr.write(`str-train predict: ${p.file}: ${p.error}\n`);
            else process.stdout.write(textLine(p) + '\n');
          }
        },
  });
  if (results.length === 0) throw new UserError(`predict: no images in ${positionals.join(', ')} (looked for .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp)`);
  if (json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  return results.some((p) => p.error) ? 1 : 0;
}
