// The hook's entry point, bundled by esbuild into dist/hook.cjs, which hooks/mountat-hook runs.
// CommonJS on purpose: starting node on a CommonJS script skips the ES module loader's set-up,
// about a tenth of the hook's start-up here.
import { readFileSync } from 'node:fs';
import { hookMain } from './hook-main.js';

void hookMain(process.argv.slice(2), () => readFileSync(0, 'utf8')).then((code) => {
  process.exitCode = code;
});
