// The runner's Prometheus metrics (prom-client, its own registry). Loaded only when
// global.diagnosticsHttpServer.enablePrometheus is set: prom-client costs ~50 ms to load.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ActionReport } from './action.js';
import type { RunnerObserver } from './observer.js';

/** Action outcome label values; every one is exported at 0 from the start, so rates work. */
export const OUTCOMES = [
  'exit_zero',
  'exit_nonzero',
  'signal',
  'start_failure',
  'cancelled',
  'setup_failure',
  'teardown_failure',
  'invalid_request',
  'internal_error',
] as const;
type Outcome = (typeof OUTCOMES)[number];

export function outcomeOf(report: ActionReport): Outcome {
  switch (report.outcome) {
    case 'exited':
      return report.exitCode === 0 ? 'exit_zero' : 'exit_nonzero';
    case 'signalled':
      return 'signal';
    case 'start-failed':
      return 'start_failure';
    case 'cancelled':
      return 'cancelled';
    case 'setup-failed':
      return 'setup_failure';
    case 'teardown-failed':
      return 'teardown_failure';
    case 'invalid-request':
      return 'invalid_request';
    case 'failed':
      return 'internal_error';
  }
}

// From 1 ms to about 10 min: setup and teardown take milliseconds, builds minutes.
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
// Powers of two from 1 MiB to 64 GiB: a shell's few MiB up to a linker's or a test's tens of GiB.
const BYTES = Array.from({ length: 17 }, (_, i) => 2 ** (20 + i));

export class RunnerMetrics implements RunnerObserver {
  readonly registry = new Registry();
  private readonly duration = new Histogram({
    name: 'mountat_runner_action_duration_seconds',
    help: 'Wall time of an action, from the Run request to the answer, teardown included.',
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly setup = new Histogram({
    name: 'mountat_runner_action_setup_duration_seconds',
    help: "Time to start the action's process and run its prestart hooks (the mounts).",
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly teardown = new Histogram({
    name: 'mountat_runner_action_teardown_duration_seconds',
    help: "Time to end the action's processes and run its poststop hooks (the unmounts).",
    buckets: SECONDS,
    registers: [this.registry],
  });
  private readonly actions = new Counter({
    name: 'mountat_runner_actions_total',
    help: 'Actions answered, by outcome.',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly peakMemory = new Histogram({
    name: 'mountat_runner_action_peak_memory_bytes',
    help: "The most memory an action's cgroup used at once (memory.peak; v1 memory.max_usage_in_bytes), page cache included.",
    buckets: BYTES,
    registers: [this.registry],
  });
  private readonly oomKills = new Counter({
    name: 'mountat_runner_action_oom_kills_total',
    help: "Actions in which the kernel's OOM killer killed a process (then the runner killed the rest).",
    registers: [this.registry],
  });
  private readonly pidsLimitHits = new Counter({
    name: 'mountat_runner_action_pids_limit_hits_total',
    help: 'Actions in which a fork or clone was refused at the pids limit at least once (actions counted, not refusals).',
    registers: [this.registry],
  });
  private readonly swept = new Counter({
    name: 'mountat_runner_startup_swept_mounts_total',
    help: 'Mounts an earlier runner left that this one removed at start-up, by how they were found.',
    labelNames: ['source'],
    registers: [this.registry],
  });
  private readonly inFlight = new Gauge({
    name: 'mountat_runner_actions_in_flight',
    help: 'Actions being set up, run or torn down.',
    registers: [this.registry],
  });
  private readonly held = new Gauge({
    name: 'mountat_runner_mounts_held',
    help: 'Mounts the built-in hook has made and not yet removed.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const outcome of OUTCOMES) this.actions.inc({ outcome }, 0);
    for (const source of ['record', 'sweep']) this.swept.inc({ source }, 0);
    // The counters without labels (OOM kills, pids limit hits) prom-client exports at 0 by itself.
  }

  actionStarted(): void {
    this.inFlight.inc();
  }

  actionFinished(report: ActionReport): void {
    this.inFlight.dec();
    this.actions.inc({ outcome: outcomeOf(report) });
    this.duration.observe(report.durationMs / 1000);
    if (report.setupMs !== undefined) this.setup.observe(report.setupMs / 1000);
    if (report.teardownMs !== undefined) this.teardown.observe(report.teardownMs / 1000);
    // Only where the action had a cgroup, and its layout the figure: no cgroup is not 0 bytes.
    const cgroup = report.cgroup;
    if (cgroup?.memoryPeakBytes !== undefined) this.peakMemory.observe(cgroup.memoryPeakBytes);
    if (cgroup?.oomKilled) this.oomKills.inc();
    if (cgroup?.pidsLimitHits !== undefined && cgroup.pidsLimitHits > 0) this.pidsLimitHits.inc();
  }

  mountsHeld(delta: number): void {
    this.held.inc(delta);
  }

  startupRecovered(fromRecords: number, swept: number): void {
    this.swept.inc({ source: 'record' }, fromRecords);
    this.swept.inc({ source: 'sweep' }, swept);
  }
}
