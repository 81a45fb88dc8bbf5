#!/usr/bin/env node
// The compiled CLI (built by `npm ci` / `npm run build` through the prepare script).
import('../dist/src/cli/main.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/src/cli/main.js')) {
    console.error('str-train: not built yet; run `npm run build` (npm ci does it) first');
    process.exit(2);
  }
  throw e;
});
