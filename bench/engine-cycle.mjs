// The engine's attach+detach cycle in a process of its own, with the same command line and
// output as bench/cycle.c and bench/raw-koffi.mjs, so that the three can be traced and run
// alike (bench/check-syscalls.sh). bench/engine.mjs times the engine in its own process instead.
//   node bench/engine-cycle.mjs ROOT CYCLES REPS WARMUP      (as root; after `npm run build`)
// prints per timed run the fields of bench/measure.mjs, as cycle.c does.
import { attach, defaultPlan, detach } from '../dist/mounts/index.js';
import { constants as C, openat2 } from '../dist/linux/index.js';
import { formatBatch, timeBatch } from './measure.mjs';

const [dir, cycles, reps, warmup] = [process.argv[2], ...process.argv.slice(3).map(Number)];
if (process.argv.length !== 6 || !(cycles >= 1 && reps >= 0 && warmup >= 0)) {
  throw new Error('usage: node bench/engine-cycle.mjs ROOT CYCLES REPS WARMUP');
}
const root = openat2(C.AT_FDCWD, dir, { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: 0 });
const plan = defaultPlan();
const cycle = () => {
  const report = detach(root, attach(root, plan));
  if (report.detached.length !== 3 || report.removed.length !== 3) throw new Error(`engine cycle incomplete: ${JSON.stringify(report)}`);
};
for (let i = 0; i < warmup; i++) cycle();
for (let r = 0; r < reps; r++) console.log(formatBatch(timeBatch(cycle, cycles)));
root.close();
