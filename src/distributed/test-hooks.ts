/**
 * Test-only instrumentation of a training run, switched on by the environment variable
 * STR_TRAIN_TEST_HOOKS (JSON); unset, nothing changes. Not a user feature: the end-to-end tests of
 * data-parallel training (test/distributed/cli-*.test.ts) drive the real CLI and need
 * - BatchNorm with fixed statistics: the setting where one process with global batch B and N
 *   workers with B/N each compute the same gradient mathematically (train-mode BatchNorm
 *   normalises each worker's shard with that shard's own statistics, as the reference does);
 * - every worker's parameter hash after every optimizer step, to check bitwise identity.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../models/model.js';
import type { LoopContext } from '../train/loop.js';
import { BatchNormBase } from '../nn/batchnorm.js';
import { hashVariables } from './gradients.js';

export const ENV_TEST_HOOKS = 'STR_TRAIN_TEST_HOOKS';

export interface TestHooks {
  /** BatchNorm layers stay in eval mode while training: they normalise with their running statistics, which stay fixed. */
  frozenBatchNorm?: boolean;
  /**
   * Directory where rank r appends `<step> <sha256 of the trainable parameters>` lines to
   * hashes-r<r>.txt: step 0 once the parameters are final before training (after the broadcast
   * and any resume), then after every optimizer step.
   */
  hashDir?: string;
}

export function testHooksOf(env: NodeJS.ProcessEnv = process.env): TestHooks | undefined {
  const raw = env[ENV_TEST_HOOKS];
  return raw ? (JSON.parse(raw) as TestHooks) : undefined;
}

/** Applies the hooks STR_TRAIN_TEST_HOOKS asks for to a run's model and loop context. */
export async function installTestHooks(model: Model, ctx: LoopContext, rank: number, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const hooks = testHooksOf(env);
  if (!hooks) return;
  if (hooks.frozenBatchNorm) {
    const train = model.train.bind(model);
    model.train = (mode = true) => {
      train(mode);
      for (const [, m] of model.namedModules()) if (m instanceof BatchNormBase) m.training = false;
      return model;
    };
  }
  if (hooks.hashDir) {
    mkdirSync(hooks.hashDir, { recursive: true });
    const file = join(hooks.hashDir, `hashes-r${rank}.txt`);
    const record = async (step: number) => appendFileSync(file, `${step} ${(await hashVariables(model.trainableVariables())).toString('hex')}\n`);
    await record(0);
    const previous = ctx.afterStep;
    ctx.afterStep = async (step) => {
      await previous?.(step);
      await record(step);
    };
  }
}
