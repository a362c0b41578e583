// What the runner tells whoever watches it (the Prometheus metrics when enabled, else nobody).
import type { ActionReport } from './action.js';

export interface RunnerObserver {
  actionStarted(): void;
  actionFinished(report: ActionReport): void;
  /** Mounts the built-in hook now holds more (+n) or fewer (-n). */
  mountsHeld(delta: number): void;
  startupRecovered(fromRecords: number, swept: number): void;
}

export const silentObserver: RunnerObserver = {
  actionStarted() {},
  actionFinished() {},
  mountsHeld() {},
  startupRecovered() {},
};
