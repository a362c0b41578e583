// The runner's action worker threads (action-worker.ts), seen from the main thread: each Run goes
// to the thread with the fewest actions in flight, as a plain RunRequest; its answer, its report
// and its error (as a kind and a line, rebuilt into a MountatError) come back. The main thread keeps
// only gRPC, this dispatch, the log line and the metrics: what grows with actions in flight (the
// mounts, the cgroups, the starter protocol, the teardown) runs on the workers' event loops, on
// other cores.
//
// A thread that dies (an exception escaping it, or its heap limit reached) leaves no RPC hanging:
// its calls are answered INTERNAL naming it, and a new thread takes its place.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { messageOf, MountatError } from '../base/index.js';
import type { Isolation } from '../sandbox/index.js';
import { actionId, type ActionReport } from './action.js';
import type { ActionWorkerData, CrossingError, FromWorker, ToWorker } from './action-messages.js';
import type { ActionConfig } from './action-settings.js';
import type { RunRequest__Output } from './generated/buildbarn/runner/RunRequest.js';
import type { RunResponse } from './generated/buildbarn/runner/RunResponse.js';
import type { RunnerObserver } from './observer.js';

/**
 * Each thread's heap, bounded as bin/mountat.js bounds the main thread's (why there): a young
 * generation of 2 MiB in all, and an old generation whose limit V8 times its major collections by
 * (24 MiB measured the same RSS here as 64). A worker holds each action's request and bookkeeping,
 * a few KiB, and a request may be 4 MiB (gRPC's default limit): 64 MiB leaves room for a burst.
 */
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 64 };
/** How long close() waits for a thread to release what it holds before terminating it. */
const CLOSE_TIMEOUT_MS = 5000;

export interface ActionPoolOptions {
  size: number;
  config: ActionConfig;
  isolation: Isolation;
  /** A cgroups base number for a new thread (reserved in this thread); undefined where actions get no cgroup. */
  cgroupsInstance: () => number | undefined;
  observer: RunnerObserver;
  log: Logger;
}

interface Call {
  request: RunRequest__Output;
  startedAt: number;
  report: (report: ActionReport) => void;
  resolve: (response: RunResponse) => void;
  reject: (error: unknown) => void;
}

function rebuilt(error: CrossingError): MountatError {
  return new MountatError(error.kind, error.line);
}

/** Structured clone makes a Buffer a plain Uint8Array: the resource usage's bytes become Buffers again. */
function revived(response: RunResponse): RunResponse {
  for (const any of response.resourceUsage ?? []) {
    if ('value' in any && any.value instanceof Uint8Array && !Buffer.isBuffer(any.value))
      any.value = Buffer.from(any.value.buffer, any.value.byteOffset, any.value.byteLength);
  }
  return response;
}

class ActionThread {
  readonly calls = new Map<number, Call>();
  readonly worker: Worker;
  /** Its threadId (the Worker's reads -1 once it has ended). */
  readonly threadId: number;
  /** Settles once the thread has opened what it needs (or failed to). */
  readonly ready: Promise<void>;
  #closed: (() => void) | undefined;
  #error: unknown;
  stopping = false;
  /** Whether it ever was ready: one that fails to start is not replaced (it would fail again). */
  started = false;

  constructor(
    readonly name: string,
    data: ActionWorkerData,
    private readonly observer: RunnerObserver,
    onExit: (thread: ActionThread, why: string) => void,
  ) {
    // trackUnmanagedFds off: the fds of src/linux/ are opened by system calls Node does not see,
    // and closing one with fs.closeSync in a tracking worker costs a process warning each time.
    this.worker = new Worker(new URL('./action-worker.js', import.meta.url), {
      workerData: data,
      resourceLimits: RESOURCE_LIMITS,
      trackUnmanagedFds: false,
    });
    this.threadId = this.worker.threadId;
    let started: () => void = () => {};
    let failed: (error: unknown) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failed = reject;
    });
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        this.started = true;
        started();
      } else if (message.type === 'start-failed') failed(rebuilt(message.error));
      else this.#received(message);
    });
    this.worker.on('error', (error) => (this.#error = error));
    this.worker.on('exit', (code) => {
      const why = this.#error !== undefined ? messageOf(this.#error) : `exit code ${code}`;
      failed(new MountatError('internal', `${this.name} stopped before it was ready: ${why}`));
      this.#closed?.();
      if (!this.stopping) onExit(this, why);
    });
  }

  #received(message: Exclude<FromWorker, { type: 'ready' | 'start-failed' }>): void {
    switch (message.type) {
      case 'mounts-held':
        return this.observer.mountsHeld(message.delta);
      case 'closed':
        return this.#closed?.();
      case 'done': {
        if (message.mountsReleased > 0) this.observer.mountsHeld(-message.mountsReleased);
        const call = this.calls.get(message.call);
        if (!call) return;
        this.calls.delete(message.call);
        if (message.report) call.report({ ...message.report, thread: this.threadId });
        if ('response' in message.answer) call.resolve(revived(message.answer.response));
        else call.reject(rebuilt(message.answer.error));
        return;
      }
      default: {
        const never: never = message;
        throw new Error(`unknown message from ${this.name}: ${JSON.stringify(never)}`);
      }
    }
  }

  post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  /** Release what the thread holds (every call answered), then end it. */
  async close(): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((resolve) => (this.#closed = resolve));
    this.post({ type: 'close' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    await this.worker.terminate();
  }
}

export class ActionPool {
  readonly #options: ActionPoolOptions;
  readonly #threads: ActionThread[] = [];
  #started = 0;
  #calls = 0;
  #closing = false;

  constructor(options: ActionPoolOptions) {
    this.#options = options;
  }

  /**
   * Start every thread. Not waited for: the runner listens meanwhile (a thread takes its first
   * action once it has opened what it needs, the request waiting in its port until then). A
   * thread that cannot start is logged, and its actions answered INTERNAL.
   */
  start(): void {
    for (let i = 0; i < this.#options.size; i++) this.#threads.push(this.#startThread());
  }

  /** The threads, their names and their actions in flight (logs, tests). */
  get threads(): Array<{ name: string; threadId: number; inFlight: number; worker: Worker }> {
    return this.#threads.map((thread) => ({ name: thread.name, threadId: thread.threadId, inFlight: thread.calls.size, worker: thread.worker }));
  }

  #startThread(): ActionThread {
    const { config, isolation, observer, log } = this.#options;
    const name = `action thread ${++this.#started}`;
    const thread = new ActionThread(name, { config, isolation, cgroupsInstance: this.#options.cgroupsInstance() }, observer, (ended, why) =>
      this.#died(ended, why),
    );
    thread.ready.then(
      () => log.debug({ thread: name, threadId: thread.threadId }, 'action thread ready'),
      (error: unknown) => log.error({ thread: name, threadId: thread.threadId, error: messageOf(error) }, 'an action thread could not start'),
    );
    return thread;
  }

  /** A thread ended on its own: its calls are answered, another takes its place. */
  #died(thread: ActionThread, why: string): void {
    const index = this.#threads.indexOf(thread);
    if (index >= 0) this.#threads.splice(index, 1);
    const calls = [...thread.calls.values()];
    thread.calls.clear();
    this.#options.log.error(
      { thread: thread.name, threadId: thread.threadId, why, actions: calls.length },
      'an action thread stopped: its actions are answered INTERNAL',
    );
    for (const call of calls) {
      const error = new MountatError(
        'internal',
        `${thread.name} stopped (${why}) while running the action: what it left is torn down when the runner next starts`,
      );
      const id = actionId(call.request.inputRootDirectory);
      call.report({ id, outcome: 'failed', durationMs: Date.now() - call.startedAt, error: error.message, thread: thread.threadId });
      call.reject(error);
    }
    if (this.#closing || !thread.started) return;
    const replacement = this.#startThread();
    this.#threads.push(replacement);
    this.#options.log.info({ thread: replacement.name, threadId: replacement.threadId }, 'action thread started in place of one that stopped');
  }

  /** Run one action on the thread with the fewest in flight; resolves and rejects as runAction does. */
  run(request: RunRequest__Output, signal: AbortSignal, report: (report: ActionReport) => void): Promise<RunResponse> {
    if (this.#closing) return Promise.reject(new MountatError('unavailable', 'the runner is stopping'));
    const thread = this.#threads.reduce<ActionThread | undefined>((best, t) => (best === undefined || t.calls.size < best.calls.size ? t : best), undefined);
    if (!thread) return Promise.reject(new MountatError('unavailable', 'no action thread is running'));
    const call = ++this.#calls;
    return new Promise<RunResponse>((resolve, reject) => {
      thread.calls.set(call, { request, startedAt: Date.now(), report, resolve, reject });
      thread.post({ type: 'run', call, request });
      const cancel = () => {
        if (thread.calls.has(call)) thread.post({ type: 'cancel', call });
      };
      if (signal.aborted) cancel();
      else signal.addEventListener('abort', cancel, { once: true });
    });
  }

  /** End every thread, once every call is answered (the service cancels them first). */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#threads.map((thread) => thread.close()));
    this.#threads.length = 0;
  }
}
