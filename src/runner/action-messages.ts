// What the main thread and an action worker thread (action-worker.ts) say to each other: plain
// objects, copied by structured clone. Errors cross as their kind and their one line, which is all
// the gRPC edge reports (service.ts), and are rebuilt there into a MountatError of that kind.
import type { ErrorKind } from '../base/index.js';
import type { Isolation } from '../sandbox/index.js';
import type { ActionReport } from './action.js';
import type { ActionConfig } from './action-settings.js';
import type { RunRequest__Output } from './generated/buildbarn/runner/RunRequest.js';
import type { RunResponse } from './generated/buildbarn/runner/RunResponse.js';

export interface ActionWorkerData {
  config: ActionConfig;
  isolation: Isolation;
  /** The `.<n>` of this worker's own cgroups base (ActionCgroups' instance), where actions get cgroups at all. */
  cgroupsInstance: number | undefined;
}

export type ToWorker =
  | { type: 'run'; call: number; request: RunRequest__Output }
  | { type: 'cancel'; call: number }
  /** Every action is answered: release what the thread holds, then say 'closed'. */
  | { type: 'close' };

export interface CrossingError {
  kind: ErrorKind;
  line: string;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'start-failed'; error: CrossingError }
  /**
   * An action answered, in one message (each costs both threads a wake-up): its report (absent where
   * runAction threw before making one), its answer, and the mounts released since the last message.
   */
  | { type: 'done'; call: number; report: ActionReport | undefined; answer: { response: RunResponse } | { error: CrossingError }; mountsReleased: number }
  /** Mounts the built-in hook now holds more, told at once (the gauge counts them while the action runs). */
  | { type: 'mounts-held'; delta: number }
  | { type: 'closed' };
