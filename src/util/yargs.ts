import { createRequire } from 'node:module';
import type { Argv } from 'yargs';

/**
 * yargs' CommonJS build: its ESM build wraps help text mid-word (its cliui there has no
 * wrap-ansi), so every command parses with this one.
 */
export const yargs = createRequire(import.meta.url)('yargs/yargs') as (args?: readonly string[]) => Argv;
