// One action's life: resolve the request's paths through fds, start the action's process
// (waiting at its gate), run the prestart hooks (the built-in one mounts), open the gate, wait,
// and run the poststop hooks on every path out: success, non-zero exit, start failure,
// cancellation, exception. A teardown failure fails the RPC; it is never dropped.
import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import type { Fd } from '../linux/index.js';
import { StartedAction, type ActionEnd, type Isolation, type StarterServer, type StartStep } from '../sandbox/index.js';
import type { RunRequest__Output } from './generated/buildbarn/runner/RunRequest.js';
import type { RunResponse } from './generated/buildbarn/runner/RunResponse.js';
import { BuildDirectory, checkRelative, openWorkingDirectory } from './build-directory.js';
import { internal, invalidArgument, RunnerError } from './errors.js';
import { SetupError, type ActionContext, type ActionHook, type Teardown } from './hooks.js';
import { packResourceUsage, signalName } from './resource-usage.js';

export interface ActionSettings {
  build: BuildDirectory;
  setTmpdir: boolean;
  temporaryDirectoryMount: string | null;
  /** Namespaces, root, capabilities and user of every action. */
  isolation: Isolation;
  /** Forks the starters (one process for the runner's life), where set; else each is executed. */
  starterServer?: StarterServer | undefined;
  prestart: ActionHook[];
  poststop: ActionHook[];
}

export interface ActionReport {
  id: string;
  outcome: 'exited' | 'signalled' | 'start-failed' | 'cancelled' | 'setup-failed' | 'teardown-failed' | 'invalid-request' | 'failed';
  exitCode?: number;
  signal?: string;
  durationMs: number;
  /** Absent when the action was refused before anything was set up. */
  setupMs?: number;
  teardownMs?: number;
  /** ms of each phase: requestMs (paths, files), spawnMs, pidMs, prestartMs, runMs (gate to end), poststopMs. */
  phases?: Record<string, number>;
  error?: string;
}

/** start failures bb_runner reports as INVALID_ARGUMENT: the command itself is at fault. */
const CALLER_ERRNOS = new Set(['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOEXEC', 'ENOTDIR', 'ELOOP']);

/** The capability a start step's EPERM means the runner (its container) was not given. */
const MISSING_CAPABILITY: Partial<Record<StartStep, string>> = {
  pidns: 'CAP_SYS_ADMIN',
  mount: 'CAP_SYS_ADMIN',
  namespaces: 'CAP_SYS_ADMIN',
  pivot_root: 'CAP_SYS_ADMIN, and a seccomp profile that allows pivot_root',
  chroot: 'CAP_SYS_CHROOT where pivot_root is refused',
  network: 'CAP_NET_ADMIN for network "none"',
  capabilities: 'CAP_SETPCAP to reduce the action\'s capabilities',
  credentials: 'CAP_SETUID and CAP_SETGID for runCommandsAs',
};

function actionId(inputRoot: string): string {
  const parts = inputRoot.split('/').filter((part) => part !== '' && part !== '.');
  const id = (parts.length > 1 ? parts.slice(0, -1).join('_') : parts.join('_')) || 'root';
  return id.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]/, 'a').slice(0, 180);
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

interface HookOutcome {
  problems: string[];
  /** What the hooks set up, each with its own teardown (prestart). */
  teardowns: Teardown[];
}

async function runHooks(hooks: ActionHook[], action: ActionContext, stopAtFirst: boolean, given: readonly Teardown[] = []): Promise<HookOutcome> {
  const outcome: HookOutcome = { problems: [], teardowns: [] };
  for (const hook of hooks) {
    try {
      const teardown = await hook.run(action, given);
      if (teardown) outcome.teardowns.push(teardown);
    } catch (error) {
      // A hook that failed may still have left something to undo.
      if (error instanceof SetupError) outcome.teardowns.push(error.teardown);
      const message = (error as Error).message;
      // An external hook's error already names it (CommandHook); the built-in ones' do not.
      outcome.problems.push(message.startsWith(hook.description) ? message : `${hook.description}: ${message}`);
      if (stopAtFirst) break;
    }
  }
  return outcome;
}

function responseFor(end: ActionEnd, argv0: string): RunResponse {
  switch (end.kind) {
    case 'exited':
      return { exitCode: end.code, resourceUsage: [packResourceUsage(end.rusage)] };
    case 'signalled':
      // As bb_runner: exit code -1, and the signal's name in the resource usage.
      return { exitCode: -1, resourceUsage: [packResourceUsage(end.rusage, end.signal)] };
    case 'start-failed': {
      const what = `cannot start ${JSON.stringify(argv0)} in the input root`;
      // exec and chdir fail for what the request names; the other steps only for what the runner lacks.
      if (end.step === 'exec' || end.step === 'chdir') {
        throw new RunnerError(CALLER_ERRNOS.has(end.code) ? status.INVALID_ARGUMENT : status.INTERNAL, `${what}: ${end.step === 'chdir' ? 'working directory: ' : ''}${end.code}`);
      }
      const lacking = end.code === 'EPERM' ? MISSING_CAPABILITY[end.step] : undefined;
      throw internal(`${what}: ${end.step}: ${end.code}${lacking ? ` (the runner needs ${lacking})` : ''}`);
    }
    case 'lost':
      throw internal(`the action's starter failed: ${end.detail}`);
  }
}

export async function runAction(request: RunRequest__Output, settings: ActionSettings, signal: AbortSignal, report: (r: ActionReport) => void): Promise<RunResponse> {
  const began = performance.now();
  const id = actionId(request.inputRootDirectory);
  const record: ActionReport = { id, outcome: 'failed', durationMs: 0 };
  // Where the time goes, for the benchmark and for anyone reading the log: each phase's ms.
  const phases: Record<string, number> = {};
  let mark = began;
  const phase = (name: string) => {
    const now = performance.now();
    phases[name] = now - mark;
    mark = now;
  };
  const fds: Fd[] = [];
  const keep = <T extends Fd | undefined>(fd: T): T => (fd && fds.push(fd), fd);
  let started: StartedAction | undefined;
  let action: ActionContext | undefined;
  let opened = false;
  let teardowns: Teardown[] = [];
  // The error the RPC fails with, if it does: a teardown failure is added to it, never put in its place.
  let failure: RunnerError | undefined;
  try {
    if (request.arguments.length === 0) throw invalidArgument('arguments is empty: there is no command to run');
    if (request.arguments[0] === '') throw invalidArgument('arguments[0] is empty');
    using build = settings.build.current();
    const root = keep(build.openDirectory('input_root_directory', request.inputRootDirectory));
    const temporaryDirectory = request.temporaryDirectory === '' ? undefined : keep(build.openDirectory('temporary_directory', request.temporaryDirectory));
    // Checked here so that a bad working directory is the request's fault before anything starts;
    // the starter looks the same relative path up again beneath the root the action sees.
    const workingDirectory = checkRelative('working_directory', request.workingDirectory, { allowEmpty: true });
    openWorkingDirectory(root, request.workingDirectory).close();
    const stdout = keep(build.createFile('stdout_path', request.stdoutPath));
    const stderr = keep(build.createFile('stderr_path', request.stderrPath));
    const env = environment(request, settings);
    if (signal.aborted) throw new RunnerError(status.CANCELLED, 'cancelled before it started');
    phase('requestMs');

    const setupBegan = performance.now();
    started = new StartedAction({
      argv: request.arguments,
      env,
      root,
      workingDirectory,
      stdout: stdout.fd,
      stderr: stderr.fd,
      isolation: settings.isolation,
      server: settings.starterServer,
    });
    // The output files belong to the action now; ours can go.
    stdout.close();
    stderr.close();
    phase('spawnMs');
    const pid = await Promise.race([started.pid, started.ended.then((end) => Promise.reject(internal(`the action's starter ended early: ${end.kind === 'lost' ? end.detail : end.kind}`)))]);
    phase('pidMs');
    action = {
      id,
      buildDirectoryPath: build.path,
      paths: {
        input_root_directory: request.inputRootDirectory,
        working_directory: request.workingDirectory,
        temporary_directory: request.temporaryDirectory,
        stdout_path: request.stdoutPath,
        stderr_path: request.stderrPath,
        server_logs_directory: request.serverLogsDirectory,
      },
      root,
      temporaryDirectory,
      pid,
      pidNamespace: settings.isolation.pidNamespace,
    };
    const setup = await runHooks(settings.prestart, action, true);
    teardowns = setup.teardowns;
    const setupProblems = setup.problems;
    phase('prestartMs');
    record.setupMs = performance.now() - setupBegan;
    if (setupProblems.length > 0) {
      record.outcome = 'setup-failed';
      throw new RunnerError(status.FAILED_PRECONDITION, `setting up the action failed: ${setupProblems[0]}`);
    }
    if (signal.aborted) throw new RunnerError(status.CANCELLED, 'cancelled during setup');

    started.open();
    opened = true;
    const onAbort = () => started?.kill();
    signal.addEventListener('abort', onAbort);
    const end = await started.ended.finally(() => signal.removeEventListener('abort', onAbort));
    phase('runMs');
    if (signal.aborted) throw new RunnerError(status.CANCELLED, 'cancelled while running; the action was killed');
    record.outcome = end.kind === 'lost' ? 'failed' : end.kind;
    if (end.kind === 'exited') record.exitCode = end.code;
    if (end.kind === 'signalled') record.signal = signalName(end.signal);
    return responseFor(end, request.arguments[0]!);
  } catch (error) {
    if (error instanceof RunnerError && error.code === status.CANCELLED) record.outcome = 'cancelled';
    else if (!started && error instanceof RunnerError && error.code === status.INVALID_ARGUMENT) record.outcome = 'invalid-request';
    record.error = (error as Error).message;
    failure = error instanceof RunnerError ? error : internal((error as Error).message, error);
    throw failure;
  } finally {
    // Teardown, on every path. The process first: nothing may still run in the root.
    const teardownBegan = performance.now();
    mark = teardownBegan;
    if (started) {
      if (!opened) started.abort();
      // An aborted gate ends the starter at once; anything still running after 2 s is killed.
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([started.ended, new Promise((resolve) => (timer = setTimeout(resolve, 2000, 'slow')))]);
      clearTimeout(timer);
      if (ended === 'slow') {
        started.kill();
        await started.ended;
      }
    }
    const teardownProblems = action ? (await runHooks(settings.poststop, action, false, teardowns)).problems : [];
    for (const fd of fds) fd.close();
    if (started) {
      phase('poststopMs');
      record.teardownMs = performance.now() - teardownBegan;
      record.phases = phases;
    }
    record.durationMs = performance.now() - began;
    if (teardownProblems.length > 0) {
      const teardown = teardownProblems.join('; ');
      record.error = failure ? `${failure.message}; teardown failed too: ${teardown}` : `teardown failed: ${teardown}`;
      report({ ...record, outcome: 'teardown-failed' });
      // Thrown from finally on purpose: a teardown failure must reach bb_worker, whatever came
      // before; added to the failure that came before (its status and reason), not put in its place.
      if (failure) throw new RunnerError(failure.code, `${failure.message}; tearing down the action failed too: ${teardown}`, { cause: failure });
      throw internal(`tearing down the action failed: ${teardown}`);
    }
    report(record);
  }
}
