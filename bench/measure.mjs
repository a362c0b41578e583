// Timing one batch of attach+detach cycles in this process, with the same fields bench/cycle.c
// prints, so the engine, the raw koffi floor and C are measured alike:
//   us        wall time per cycle
//   user, sys CPU time per cycle of the whole process (getrusage: Node's helper threads too)
//   nvcsw, nivcsw  voluntary and involuntary context switches per cycle, whole process
//   onCpu     time per cycle the calling thread itself ran       (/proc/thread-self/schedstat)
//   runQueue  time per cycle it was runnable but waited for a CPU (idem)
// us - onCpu - runQueue is the time the thread slept: on this VM, umount's RCU grace periods.
import { readFileSync } from 'node:fs';

export const FIELDS = ['us', 'user', 'sys', 'nvcsw', 'nivcsw', 'onCpu', 'runQueue'];

/** The calling thread's on-CPU and run-queue times so far, in ns. */
function threadSched() {
  const [onCpu, runQueue] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
  return { onCpu, runQueue };
}

function snapshot() {
  const u = process.resourceUsage();
  const sched = threadSched();
  return {
    ns: process.hrtime.bigint(),
    user: u.userCPUTime,
    sys: u.systemCPUTime,
    nvcsw: u.voluntaryContextSwitches,
    nivcsw: u.involuntaryContextSwitches,
    onCpu: sched.onCpu / 1e3,
    runQueue: sched.runQueue / 1e3,
  };
}

/** Run `cycle` `cycles` times; every field per cycle, times in µs. */
export function timeBatch(cycle, cycles) {
  const before = snapshot();
  for (let i = 0; i < cycles; i++) cycle();
  const after = snapshot();
  const batch = { us: Number(after.ns - before.ns) / 1e3 / cycles };
  for (const key of FIELDS.slice(1)) batch[key] = (after[key] - before[key]) / cycles;
  return batch;
}

/** One line, as cycle.c prints it. */
export function formatBatch(batch) {
  return FIELDS.map((key) => batch[key].toFixed(key.endsWith('csw') ? 4 : 3)).join(' ');
}

export function parseBatch(line) {
  const values = line.trim().split(' ').map(Number);
  if (values.length !== FIELDS.length || !values.every(Number.isFinite)) throw new Error(`not a batch line: ${JSON.stringify(line)}`);
  return Object.fromEntries(FIELDS.map((key, i) => [key, values[i]]));
}
