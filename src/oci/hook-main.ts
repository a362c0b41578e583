// What a container runtime reaches through hooks/mountat-hook (dist/hook.cjs, from hook-entry.ts):
//   mountat-hook STAGE [--plan FILE] [--state-dir DIR] [--log-file FILE|-] [--log-level LEVEL]
// with the container state on stdin. Success prints one summary line on stdout; failure one
// line on stderr and a non-zero exit (runc shows it in its own error). Every error is turned
// into that line here, and only here. The environment is read here too, and only here: the state
// directory's variable, and the PATH the re-executed hook gets.
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { messageOf, reportOf } from '../base/index.js';
import { stateDirectoryFrom } from '../mounts/index.js';
import { HookError } from './errors.js';
import { openLog, type HookLog } from './log.js';
import { parseState } from './state.js';
import { isStage, runStage, STAGES, type Stage, type StageOptions } from './stages.js';
import type { FdRef } from '../linux/index.js';
import { readBasePlan } from './annotations.js';

const USAGE = `usage: mountat-hook STAGE [--plan FILE] [--state-dir DIR] [--log-file FILE|-] [--log-level LEVEL]
                    [--root-fd N [--proc-pidns]] [--hook-socket PATH|none] < state.json
  STAGE: createContainer (mounts), prestart or createRuntime (mounts inside the container's namespace), poststop (cleans up)
  (podman's own stage: mountat-hook precreate [--plan FILE] < config.json > config.json)
  --root-fd N: work on the directory open as fd N instead of the state's rootfs (as mountat runner hands it)
  --proc-pidns: make proc show the PID namespace of the state's pid (with --root-fd; needs a kernel with proc's pidns option)
  --hook-socket: the launcher's (hooks/mountat-hook): where "mountat hook-server" listens (default /run/mountat/hook.sock), or none`;

interface Args {
  stage: Stage;
  plan: string | undefined;
  stateDir: string | undefined;
  logFile: string | undefined;
  logLevel: string;
  rootFd: number | undefined;
  procPidns: boolean;
  forward: string[];
}

/** The stage the hook's arguments name, or undefined where they are wrong (the hook reports that itself). */
export function stageOf(argv: string[]): Stage | undefined {
  try {
    return parse(argv).stage;
  } catch {
    return undefined;
  }
}

function parse(argv: string[]): Args {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        plan: { type: 'string' },
        'state-dir': { type: 'string' },
        'log-file': { type: 'string' },
        'log-level': { type: 'string' },
        'root-fd': { type: 'string' },
        'proc-pidns': { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new HookError(`${messageOf(error)}\n${USAGE}`, 'usage', { cause: error });
  }
  const [stage, ...extra] = parsed.positionals;
  if (stage === undefined) throw new HookError(`no stage given\n${USAGE}`, 'usage');
  if (!isStage(stage)) throw new HookError(`unknown stage ${JSON.stringify(stage)} (one of ${STAGES.join(', ')})`, 'usage');
  if (extra.length > 0) throw new HookError(`unexpected argument ${JSON.stringify(extra[0])}`, 'usage');
  const logLevel = parsed.values['log-level'] ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new HookError(`--log-level ${JSON.stringify(logLevel)}: one of debug, info, warn, error`, 'usage');
  const rootFdText = parsed.values['root-fd'];
  if (rootFdText !== undefined && !/^\d{1,4}$/.test(rootFdText)) throw new HookError(`--root-fd ${JSON.stringify(rootFdText)}: give an fd number`, 'usage');
  const procPidns = parsed.values['proc-pidns'] ?? false;
  if (procPidns && rootFdText === undefined) throw new HookError('--proc-pidns goes with --root-fd', 'usage');
  const forward = argv.filter((arg) => arg !== stage);
  return {
    stage,
    plan: parsed.values.plan,
    stateDir: parsed.values['state-dir'],
    logFile: parsed.values['log-file'],
    logLevel,
    rootFd: rootFdText === undefined ? undefined : Number(rootFdText),
    procPidns,
    forward,
  };
}

/** Where the hook runs, as the entry point decides it: its own process, or a hook server's worker thread. */
export interface HookContext {
  /** $MOUNTAT_STATE_DIR as the hook sees it (a server passes none: the hook's argv alone decides). */
  stateDirVariable: string | undefined;
  /** How prestart/createRuntime enter the container (StageOptions): re-execute through nsenter, or move the thread. */
  reexec?: StageOptions['reexec'];
  enterNamespacesOf?: StageOptions['enterNamespacesOf'];
  /** The PID namespace proc shows at createContainer where it is not the caller's own (StageOptions). */
  procPidns?: FdRef | undefined;
  /**
   * The fd --root-fd's root is open as here, where it is not the number given (a hook server's
   * copy of the launcher's fd): messages still name the number the hook was given.
   */
  rootFd?: number | undefined;
  /** Where `--log-file -` writes: the process's stderr, or the answer a server sends back. */
  stderrSink?: ((text: string) => void) | undefined;
}

export interface HookOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The hook on `argv` with the state text `stdin`: what it prints and its exit status; it never throws. */
export async function runHook(argv: string[], stdin: () => string, context: HookContext): Promise<HookOutcome> {
  let log: HookLog | undefined;
  let stderr = '';
  const sink = context.stderrSink ?? ((text: string) => (stderr += text));
  try {
    const args = parse(argv);
    const state = parseState(stdin());
    log = await openLog(args.logFile, args.logLevel, { hook: 'mountat', stage: args.stage, container: state.id }, sink);
    const result = await runStage(args.stage, state, {
      // Only the stages that mount read the plan: a plan file broken since must not block poststop.
      base: args.stage === 'poststop' ? undefined : readBasePlan(args.plan),
      stateDir: stateDirectoryFrom(args.stateDir, context.stateDirVariable),
      log,
      reexec: context.reexec && { ...context.reexec, forwardArgs: args.forward },
      enterNamespacesOf: context.enterNamespacesOf,
      procPidns: context.procPidns,
      rootFd: args.rootFd === undefined ? undefined : (context.rootFd ?? args.rootFd),
      rootFdLabel: args.rootFd,
      procPidnsOfStatePid: args.procPidns,
    });
    log.flush();
    return { exitCode: 0, stdout: `${result.summary}\n`, stderr };
  } catch (error) {
    // The kind's exit code and the one line (a cause is repeated only where a wrap() asked for it).
    const { exitCode, line } = reportOf(error);
    log?.warn({ error: line }, 'failed');
    log?.flush();
    sink(`mountat-hook: ${line}\n`);
    return { exitCode, stdout: '', stderr };
  }
}

export async function hookMain(argv: string[], stdin: () => string): Promise<number> {
  // The hook re-executed through nsenter (prestart, createRuntime) gets PATH alone, to find
  // nsenter: nothing else of the runtime's environment reaches the node it starts.
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  const outcome = await runHook(argv, stdin, {
    stateDirVariable: process.env.MOUNTAT_STATE_DIR,
    reexec: { command: [process.execPath, process.argv[1] ?? ''], forwardArgs: [], env },
    // Straight to fd 2, as the log lines come: they must not wait for the end of a hook that hangs.
    stderrSink: (text) => writeSync(2, text),
  });
  // writeSync, not process.stdout: creating that stream loads Node's stream modules, about 7 ms of
  // the hook's start here.
  if (outcome.stdout) writeSync(1, outcome.stdout);
  return outcome.exitCode;
}
