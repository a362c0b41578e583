// The hook's entry point, bundled by esbuild into dist/hook.cjs, which hooks/mountat-hook runs.
// CommonJS on purpose: starting node on a CommonJS script skips the ES module loader's set-up,
// about a tenth of the hook's start-up here.
// Each entry is imported only when its stage is asked for (esbuild initialises a dynamically
// imported module lazily): podman's precreate stage does not set up the OCI stages it never runs.
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const stdin = () => readFileSync(0, 'utf8');
const run =
  argv[0] === 'precreate'
    ? import('./precreate-main.js').then(({ precreateMain }) => precreateMain(argv.slice(1), stdin))
    : import('./hook-main.js').then(({ hookMain }) => hookMain(argv, stdin));

void run.then((code) => {
  process.exitCode = code;
});
