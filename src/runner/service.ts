// The gRPC service buildbarn.runner.Runner. Errors become gRPC statuses here, in one place: the
// kind's row of the one table (src/base/errors.ts) and the error's one line.
import { existsSync } from 'node:fs';
import type { sendUnaryData, Server, ServerUnaryCall, ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Empty } from './generated/google/protobuf/Empty.js';
import type { CheckReadinessRequest__Output } from './generated/buildbarn/runner/CheckReadinessRequest.js';
import type { RunRequest__Output } from './generated/buildbarn/runner/RunRequest.js';
import type { RunResponse } from './generated/buildbarn/runner/RunResponse.js';
import type { RunnerHandlers } from './generated/buildbarn/runner/Runner.js';
import type { ActionReport } from './action.js';
import type { BuildDirectory } from './build-directory.js';
import { MountatError, reportOf } from '../base/index.js';
import { silentObserver, type RunnerObserver } from './observer.js';
import { loadRunnerProto } from './protos.js';

function toServiceError(error: unknown): Partial<ServiceError> {
  const { grpcStatus, line } = reportOf(error);
  return { code: grpcStatus, details: line };
}

/** Runs one action: runAction on this thread, or on a worker thread (ActionPool.run). */
export type ActionRunner = (request: RunRequest__Output, signal: AbortSignal, report: (report: ActionReport) => void) => Promise<RunResponse>;

export class RunnerService {
  /** In-flight actions, so shutdown can cancel them and wait for their teardown. */
  readonly inFlight = new Map<AbortController, Promise<unknown>>();

  constructor(
    private readonly build: BuildDirectory,
    private readonly runAction: ActionRunner,
    private readonly readinessPaths: string[],
    private readonly log: Logger,
    private readonly observer: RunnerObserver = silentObserver,
  ) {}

  /** Why the runner cannot take actions now (a readiness-checking pathname is missing), if it cannot. */
  notReady(): string | undefined {
    const missing = this.readinessPaths.filter((path) => !existsSync(path));
    return missing.length > 0 ? `${missing.join(', ')} missing` : undefined;
  }

  checkReadiness(call: ServerUnaryCall<CheckReadinessRequest__Output, Empty>, callback: sendUnaryData<Empty>): void {
    try {
      const why = this.notReady();
      if (why !== undefined) throw new MountatError('unavailable', `not ready: ${why}`);
      let path = call.request.path;
      const prefix = `${this.build.path.replace(/\/$/, '')}/`;
      if (path.startsWith(prefix)) path = path.slice(prefix.length);
      // An empty path is the build directory itself (what `mountat probe` sends): bb_worker always names a directory.
      using build = this.build.current();
      if (!build.exists('path', path, { allowEmpty: true }))
        throw new MountatError('not-found', `path ${JSON.stringify(call.request.path)} does not exist in the build directory`);
      callback(null, {});
    } catch (error) {
      callback(toServiceError(error));
    }
  }

  run(call: ServerUnaryCall<RunRequest__Output, RunResponse>, callback: sendUnaryData<RunResponse>): void {
    const controller = new AbortController();
    // bb_worker cancels the RPC when the action times out.
    call.on('cancelled', () => controller.abort());
    this.observer.actionStarted();
    let made: ActionReport | undefined;
    const done = this.runAction(call.request, controller.signal, (report) => (made = report))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error)),
      )
      // Logged and counted once the answer is on its way: its log line (about 0.1 ms of this
      // thread) is not between the action's end and bb_worker. Before any other request is read.
      .finally(() => {
        if (!made) return;
        const level = made.error && made.outcome !== 'cancelled' ? 'warn' : 'info';
        this.log[level]({ action: made }, 'action');
        this.observer.actionFinished(made);
      });
    this.inFlight.set(controller, done);
    void done.finally(() => this.inFlight.delete(controller));
  }

  /** Cancel every action in flight and wait until each has been torn down. */
  async cancelAll(): Promise<void> {
    for (const controller of this.inFlight.keys()) controller.abort();
    await Promise.allSettled(this.inFlight.values());
  }

  addToServer(server: Server): void {
    const proto = loadRunnerProto();
    const handlers: RunnerHandlers = {
      CheckReadiness: (call, callback) => this.checkReadiness(call, callback),
      Run: (call, callback) => this.run(call, callback),
    };
    server.addService(proto.buildbarn.runner.Runner.service, handlers);
  }
}
