// One action through the runner: the request's paths are opened through fds, then the shared
// lifecycle of a contained process (src/sandbox/contained.ts) starts the action at its gate, runs
// the prestart hooks (the built-in one mounts), opens the gate and waits; the poststop hooks and
// every undo run once it has stopped, on every path. The outcome, a teardown failure included,
// becomes the RunResponse or the error the RPC fails with; nothing is dropped.
import { describeError, MountatError } from '../base/index.js';
import { openDetachedCopy } from '../mounts/index.js';
import {
  commandEnded,
  runContained,
  type ActionCgroups,
  type ActionOutcome,
  type CgroupUsage,
  type Isolation,
  type StarterServer,
  type StartOptions,
} from '../sandbox/index.js';
import type { RunRequest__Output } from './generated/buildbarn/runner/RunRequest.js';
import type { RunResponse } from './generated/buildbarn/runner/RunResponse.js';
import { checkRelative, openWorkingDirectory, type BuildDirectoryLocation } from './build-directory.js';
import { invalidArgument } from './errors.js';
import { setUpAction, tearDownAction, type ActionContext, type PoststopStep, type PrestartHook } from './hooks.js';
import { packCgroupUsage } from './cgroup-usage.js';
import { packResourceUsage, signalName } from './resource-usage.js';

export interface ActionSettings {
  build: BuildDirectoryLocation;
  setTmpdir: boolean;
  temporaryDirectoryMount: string | null;
  /** Namespaces, root, capabilities and user of every action. */
  isolation: Isolation;
  /** Forks the starters (one process for the runner's life), where set; else each is executed. */
  starterServer?: StarterServer | undefined;
  /**
   * Mount on a detached copy of each input root, which the action is rooted in (hooks.ts
   * ActionContext.rootCopy): where the built-in hook is the only prestart hook, the action has a
   * root of its own, and the kernel mounts onto detached trees.
   */
  mountOnCopy: boolean;
  /** Where each action gets a cgroup of its own (its limits, its kill, its figures); none without. */
  cgroups?: ActionCgroups | undefined;
  /** Every action's oom_score_adj (limits.oomScoreAdj); null leaves the runner's. */
  oomScoreAdj?: number | null | undefined;
  /** Every action's nice value and floor (limits.nice); null leaves the runner's. */
  nice?: number | null | undefined;
  prestart: PrestartHook[];
  poststop: PoststopStep[];
}

export interface ActionReport {
  id: string;
  outcome: ActionOutcome['label'];
  exitCode?: number;
  signal?: string;
  durationMs: number;
  /** Absent when the action was refused before anything was set up. */
  setupMs?: number;
  teardownMs?: number;
  /** ms of each phase: requestMs (paths, files), spawnMs, pidMs, prestartMs, runMs (gate to end), poststopMs. */
  phases?: Record<string, number>;
  error?: string;
  /** The figures of the action's own cgroup, where it had one. */
  cgroup?: CgroupUsage;
  /** The worker thread that ran it (its threadId), where actions run on worker threads (action-pool.ts). */
  thread?: number;
}

/** The action's name in logs and records: its directory under the build directory. */
export function actionId(inputRoot: string): string {
  const parts = inputRoot.split('/').filter((part) => part !== '' && part !== '.');
  const id = (parts.length > 1 ? parts.slice(0, -1).join('_') : parts.join('_')) || 'root';
  return id
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/^[^A-Za-z0-9]/, 'a')
    .slice(0, 180);
}

function environment(request: RunRequest__Output, settings: ActionSettings): Record<string, string> {
  const env: Record<string, string> = {};
  if (settings.setTmpdir && request.temporaryDirectory !== '') {
    if (settings.isolation.root === 'none') env.TMPDIR = `${settings.build.path}/${checkRelative('temporary_directory', request.temporaryDirectory)}`;
    else if (settings.temporaryDirectoryMount !== null) env.TMPDIR = `/${settings.temporaryDirectoryMount}`;
  }
  // The request's own variables win, as in bb_runner.
  return Object.assign(env, request.environmentVariables);
}

/** The request phase: its fields checked, its paths opened beneath the build directory, owned by `session`. */
function openRequest(request: RunRequest__Output, settings: ActionSettings, session: AsyncDisposableStack) {
  if (request.arguments.length === 0) throw invalidArgument('arguments is empty: there is no command to run');
  if (request.arguments[0] === '') throw invalidArgument('arguments[0] is empty');
  using build = settings.build.current();
  const root = session.use(build.openDirectory('input_root_directory', request.inputRootDirectory));
  // Taken before the start: the starter roots the action in what it is given, once the gate opens.
  const rootCopy = settings.mountOnCopy ? session.use(openDetachedCopy(root)) : undefined;
  const temporaryDirectory =
    request.temporaryDirectory === '' ? undefined : session.use(build.openDirectory('temporary_directory', request.temporaryDirectory));
  // Checked here so that a bad working directory is the request's fault before anything starts;
  // the starter looks the same relative path up again beneath the root the action sees.
  const workingDirectory = checkRelative('working_directory', request.workingDirectory, { allowEmpty: true });
  openWorkingDirectory(root, request.workingDirectory).close();
  const stdout = session.use(build.createFile('stdout_path', request.stdoutPath));
  const stderr = session.use(build.createFile('stderr_path', request.stderrPath));
  const start: StartOptions = {
    argv: request.arguments,
    env: environment(request, settings),
    root: rootCopy ?? root,
    rootIsCopy: rootCopy !== undefined,
    workingDirectory,
    stdout: stdout.fd,
    stderr: stderr.fd,
    isolation: settings.isolation,
    server: settings.starterServer,
  };
  return { start, root, rootCopy, temporaryDirectory, stdout, stderr, buildPath: build.path };
}

function responseOf(outcome: ActionOutcome, cgroup: CgroupUsage | undefined): RunResponse {
  const ran = outcome.ran;
  if (outcome.error || !ran) throw outcome.error ?? new MountatError('internal', 'an outcome with neither an end nor an error');
  // The action's first process as wait4 saw it, then its whole cgroup (cgroup-usage.ts).
  const more = cgroup ? [packCgroupUsage(cgroup)] : [];
  // As bb_runner: a signal gives exit code -1, and the signal's name in the resource usage.
  if (ran.kind === 'signalled') return { exitCode: -1, resourceUsage: [packResourceUsage(ran.rusage, ran.signal), ...more] };
  return { exitCode: ran.code, resourceUsage: [packResourceUsage(ran.rusage), ...more] };
}

/** Run one action; resolves with its RunResponse or rejects with a MountatError whose kind gives the status. */
export async function runAction(
  request: RunRequest__Output,
  settings: ActionSettings,
  signal: AbortSignal,
  report: (r: ActionReport) => void,
): Promise<RunResponse> {
  const id = actionId(request.inputRootDirectory);
  let opened: ReturnType<typeof openRequest> | undefined;
  const result = await runContained({
    argv0: request.arguments[0] ?? '',
    rootName: 'the input root',
    signal,
    cgroups: settings.cgroups,
    oomScoreAdj: settings.oomScoreAdj,
    nice: settings.nice,
    request: (session) => (opened = openRequest(request, settings, session)).start,
    // The action runs on its own: this thread's wait is when the next action's cgroup and mounts are made.
    running: () => {
      settings.cgroups?.makeAhead();
      for (const hook of settings.prestart) hook.prepareNext?.();
    },
    // The output files belong to the action now; ours can go.
    started: () => {
      opened?.stdout.close();
      opened?.stderr.close();
    },
    setUp: async (pid, undos, ended) => {
      const { root, rootCopy, temporaryDirectory, buildPath } = opened!;
      const action: ActionContext = {
        id,
        buildDirectoryPath: buildPath,
        paths: {
          input_root_directory: request.inputRootDirectory,
          working_directory: request.workingDirectory,
          temporary_directory: request.temporaryDirectory,
          stdout_path: request.stdoutPath,
          stderr_path: request.stderrPath,
          server_logs_directory: request.serverLogsDirectory,
        },
        root,
        rootCopy,
        temporaryDirectory,
        pid,
        rootEntered: () => commandEnded(ended()),
        pidNamespace: settings.isolation.pidNamespace,
      };
      // The poststop hooks run once the action has stopped, the setup's undos where "mountat" stands.
      const setup = new AsyncDisposableStack();
      undos.defer(() => tearDownAction(settings.poststop, action, setup));
      await setUpAction(settings.prestart, action, setup);
    },
  });

  const { outcome } = result;
  const record: ActionReport = { id, outcome: outcome.label, durationMs: result.durationMs };
  if (outcome.ran?.kind === 'exited') record.exitCode = outcome.ran.code;
  if (outcome.ran?.kind === 'signalled') record.signal = signalName(outcome.ran.signal);
  if (result.setupMs !== undefined) record.setupMs = result.setupMs;
  if (result.teardownMs !== undefined) {
    record.teardownMs = result.teardownMs;
    record.phases = result.phases;
  }
  if (outcome.error) record.error = describeError(outcome.error);
  if (result.cgroup) record.cgroup = result.cgroup;
  report(record);
  return responseOf(outcome, result.cgroup);
}
