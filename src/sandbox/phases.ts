// Where an action's time goes, phase by phase, for the log and the benchmark: each mark() closes
// the phase that ran since the previous mark, under its name.
import { performance } from 'node:perf_hooks';

export class PhaseTimer {
  readonly began = performance.now();
  readonly ms: Record<string, number> = {};
  #last = this.began;

  /** Close the phase that ran since the last mark as `name`; returns now. */
  mark(name: string): number {
    const now = performance.now();
    this.ms[name] = now - this.#last;
    this.#last = now;
    return now;
  }

  sinceStart(): number {
    return performance.now() - this.began;
  }
}
