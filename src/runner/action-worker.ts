// One action worker thread (action-pool.ts starts them): it runs whole actions with runAction, on
// its own event loop, so that what an action costs the runner (opening its paths, the starter
// protocol, its cgroup, its mounts and their record, its teardown) runs beside the main thread's
// gRPC and beside the other workers, on other cores. It opens what it needs for itself (the build
// directory by its path, for each request): the records (one file per action key: no two threads write the same one), a starter
// fork server of its own and a cgroups base of its own (`mountat-<pid>.<n>`, which the next
// runner's start-up sweep finds if this process dies). The bindings of src/linux/ are loaded
// again in this thread, as every module is.
import { parentPort, workerData } from 'node:worker_threads';
import { describeError, kindOf } from '../base/index.js';
import { RecordStore } from '../mounts/index.js';
import { ActionCgroups, STARTER_PATH, StarterServer } from '../sandbox/index.js';
import { runAction, type ActionReport } from './action.js';
import type { ActionWorkerData, CrossingError, FromWorker, ToWorker } from './action-messages.js';
import { actionSettingsOf, releaseActionSettings } from './action-settings.js';
import { buildDirectoryAt } from './build-directory.js';
import type { RunResponse } from './generated/buildbarn/runner/RunResponse.js';
import { silentObserver } from './observer.js';

const port = parentPort;
if (!port) throw new Error('action-worker.js runs as a worker thread of the runner');
const post = (message: FromWorker) => port.postMessage(message);
const crossing = (error: unknown): CrossingError => ({ kind: kindOf(error), line: describeError(error) });

// eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- what action-pool.ts posts, made by this code
const { config, isolation, cgroupsInstance } = workerData as ActionWorkerData;
const running = new Map<number, AbortController>();
/** Mounts released since the last message: told with the next action's answer. */
let released = 0;
let settings: ReturnType<typeof actionSettingsOf>;
let starterServer: StarterServer | undefined;
let cgroups: ActionCgroups | undefined;
try {
  starterServer = new StarterServer(STARTER_PATH);
  // The main thread did the one-time work (the stale sweep, the move into the leaf, the refusals)
  // with the same options: here the same parent, a base of this thread's own.
  cgroups =
    cgroupsInstance === undefined
      ? undefined
      : ActionCgroups.open({ limits: config.limits, parent: config.cgroupParent, moveIntoLeaf: true, instance: cgroupsInstance, ahead: true }).cgroups;
  settings = actionSettingsOf(config, {
    isolation,
    build: buildDirectoryAt(config.buildDirectoryPath),
    records: new RecordStore(config.stateDirectory),
    starterServer,
    cgroups,
    // The built-in hook's count goes to the main thread's observer (the metrics live there).
    observer: {
      ...silentObserver,
      mountsHeld: (delta) => {
        if (delta > 0) post({ type: 'mounts-held', delta });
        else released -= delta;
      },
    },
  });
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'start-failed', error: crossing(error) });
  throw error;
}

function run(call: number, request: ToWorker & { type: 'run' }): void {
  const controller = new AbortController();
  running.set(call, controller);
  let report: ActionReport | undefined;
  const done = (answer: { response: RunResponse } | { error: CrossingError }) => {
    running.delete(call);
    post({ type: 'done', call, report, answer, mountsReleased: released });
    released = 0;
  };
  runAction(request.request, settings, controller.signal, (made) => (report = made)).then(
    (response) => done({ response }),
    (error: unknown) => done({ error: crossing(error) }),
  );
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'run':
      return run(message.call, message);
    case 'cancel':
      return running.get(message.call)?.abort();
    case 'close':
      // The pool sends this once every action it gave here is answered (torn down).
      starterServer?.close();
      cgroups?.[Symbol.dispose]();
      releaseActionSettings(settings);
      post({ type: 'closed' });
      return;
    default: {
      const never: never = message;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
});
