// What the hook does at each OCI stage. createContainer runs inside the container's mount
// namespace before pivot_root, where the rootfs is reachable: it mounts. prestart and
// createRuntime run in the runtime's namespace, where a mount would never reach the container:
// the hook re-executes itself there through nsenter (Node itself cannot setns into another
// mount namespace). poststop, back in the runtime's namespace, removes whatever the record
// says is left.
import { errnoCodeOf, kindOf, messageOf, reportOf, type ErrorKind } from '../base/index.js';
import { BorrowedFd, openPidNamespace, userNamespaceOf, type Fd, type FdRef } from '../linux/index.js';
import {
  DetachError,
  detachSummary,
  MountedRoot,
  mountRecorded,
  RecordStore,
  rootIdentityOf,
  type Cover,
  type Plan,
  type RecordKeeping,
} from '../mounts/index.js';
import { containerPlan, type BasePlan } from './annotations.js';
import { openRootfs, RootfsGoneError } from './bundle.js';
import { HookError } from './errors.js';
import type { HookLog } from './log.js';
import type { OciState } from './state.js';

export const STAGES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type Stage = (typeof STAGES)[number];

/** Whether `name` is a stage's (the hook's first argument). */
export function isStage(name: string): name is Stage {
  return (STAGES as readonly string[]).includes(name);
}

/**
 * Where the stage keeps its records: the state directory the entry point decided (the hook's
 * --state-dir or $MOUNTAT_STATE_DIR), or a store of the caller's (a test wraps one to make a write fail).
 */
export type StageRecords = { stateDir: string; records?: undefined } | { records: RecordKeeping; stateDir?: undefined };

export type StageOptions = StageRecords & {
  /**
   * The root as an fd the caller opened (the runner hands hooks the input root as fd 3), instead
   * of the state's rootfs; and whether proc is for the PID namespace of state.pid.
   */
  rootFd?: number | undefined;
  /** The number the hook was given for rootFd, where this process holds the root as another (a hook server). */
  rootFdLabel?: number | undefined;
  procPidnsOfStatePid?: boolean | undefined;
  base?: BasePlan | undefined;
  log: HookLog;
  /**
   * How to run this hook again inside the container's namespace (prestart/createRuntime): the
   * node binary and entry script, the arguments to pass on, and the environment to give it (the
   * entry point's choice: nothing here reads the environment).
   */
  reexec?: { command: string[]; forwardArgs: string[]; env: Record<string, string> };
  /**
   * Instead of reexec: run `work` with the calling thread inside the mount and network namespaces
   * of `pid`, given its PID namespace for proc (a hook server's worker thread, which can move).
   */
  enterNamespacesOf?: ((pid: number, work: (pidns: FdRef) => StageResult) => StageResult) | undefined;
  /**
   * The PID namespace proc shows at createContainer, where it is not the calling thread's own: a
   * hook server mounting for a hook that runs in the container's (runc, crun).
   */
  procPidns?: FdRef | undefined;
};

function recordsOf(options: StageRecords): RecordKeeping {
  return options.records ?? new RecordStore(options.stateDir);
}

export interface StageResult {
  summary: string;
}

/** Records of OCI hooks are keyed by container id: two containers may share one rootfs. */
export function recordKey(state: OciState): string {
  return `oci-${state.id}`;
}

/** The root the stage works on: the caller's fd (not ours to close), or the state's rootfs. */
function openRoot(state: OciState, options: StageOptions): { fd: FdRef; path: string; close(): void } {
  if (options.rootFd !== undefined) {
    // Inherited from whoever ran the hook (the runner's fd 3): borrowed, never closed here.
    const fd = new BorrowedFd(options.rootFd);
    const label = options.rootFdLabel ?? options.rootFd;
    try {
      rootIdentityOf(fd);
    } catch (error) {
      throw new HookError(`--root-fd ${label}: ${messageOf(error)}`, 'usage', { cause: error });
    }
    return { fd, path: `the root at fd ${label}`, close() {} };
  }
  const rootfs = openRootfs(state);
  return { fd: rootfs.fd, path: rootfs.path, close: () => rootfs.fd.close() };
}

function openPidns(state: OciState): Fd {
  if (!state.pid) throw new HookError('--proc-pidns: the state has no pid whose PID namespace proc should show');
  try {
    return openPidNamespace(state.pid);
  } catch (error) {
    throw new HookError(`--proc-pidns: ${messageOf(error)}`, kindOf(error), { cause: error });
  }
}

function mountInContainer(state: OciState, plan: Plan, options: StageOptions): StageResult {
  const rootfs = openRoot(state, options);
  using _root = { [Symbol.dispose]: () => rootfs.close() };
  const records = recordsOf(options);
  using pidns = options.procPidnsOfStatePid ? openPidns(state) : undefined;
  let attempt;
  try {
    attempt = mountRecorded(rootfs.fd, plan, {
      records,
      key: recordKey(state),
      existing: 'replace',
      onReplace: (record) => options.log.warn({ record }, 'a record for this container id already exists; replacing it'),
      procPidns: pidns ?? options.procPidns,
    });
  } catch (error) {
    throw new HookError(`${messageOf(error)}${stateDirHint(error)}`, kindOf(error), { cause: error });
  }
  if (attempt.error) {
    // What a failed rollback left stays recorded: poststop, which the runtime runs next, retries it.
    const kept = attempt.leftover ? ` (what is left is recorded in ${attempt.leftover.recordPath} for poststop)` : '';
    throw new HookError(`${messageOf(attempt.error)}${stateDirHint(attempt.error)}${kept}`, kindOf(attempt.error), { cause: attempt.error });
  }
  const { mounted } = attempt;
  const { attachment } = mounted;
  const targets = attachment.mounts.map((mount) => `${mount.kind} on /${mount.target}${mount.covers ? ` (${coverCounts(mount.covers)})` : ''}`);
  options.log.info({ rootfs: rootfs.path, mounts: attachment.mounts, record: mounted.recordPath }, 'mounted');
  return { summary: `mounted ${targets.join(', ') || 'nothing'} in ${rootfs.path}` };
}

/**
 * runc and crun run createContainer hooks inside the container's user namespace, as its root: where
 * that namespace is not the host's, its root is an unprivileged uid on the host, which the host's
 * state directory (root's, mode 0700) shuts out. The hook at createRuntime or prestart enters the
 * container's namespaces but stays the host's root (stages.ts, mountThroughNsenter).
 */
function stateDirHint(error: unknown): string {
  const code = errnoCodeOf(error instanceof Error ? error.cause : undefined);
  if (code !== 'EACCES' && code !== 'EPERM') return '';
  const userns = userNamespaceOf();
  if (userns.initial) return '';
  return ` (the hook runs as root of the container's user namespace, uid map ${userns.uidMap.join(', ')}, which the state directory shuts out: run it at createRuntime instead, or give it a --state-dir that uid owns)`;
}

/** "hardened: 4 read-only, 3 masked": what the covers of a proc or sysfs did, in a few words for the summary line. */
function coverCounts(covers: Cover[]): string {
  const readOnly = covers.filter((cover) => cover.how === 'readonly').length;
  return `hardened: ${readOnly} read-only, ${covers.length - readOnly} masked`;
}

/** prestart/createRuntime: run createContainer's work inside the container's mount and PID namespaces. */
async function mountThroughNsenter(stage: Stage, state: OciState, options: StageOptions): Promise<StageResult> {
  if (!state.pid) {
    throw new HookError(
      `stage ${stage}: the state has no container pid (got ${state.pid ?? 'none'}), so its namespace cannot be entered; run the hook at createContainer`,
    );
  }
  if (options.enterNamespacesOf) {
    const plan = containerPlan(state.annotations, options.base);
    const inner: StageOptions = { ...options, enterNamespacesOf: undefined, reexec: undefined };
    let result: StageResult;
    try {
      result = options.enterNamespacesOf(state.pid, (pidns) => mountInContainer(state, plan, { ...inner, procPidns: pidns }));
    } catch (error) {
      // The same line and kind as through nsenter below, where only the line crosses back.
      throw new HookError(`stage ${stage}: inside the container's namespace (pid ${state.pid}): ${reportOf(error).line}`, 'precondition', { cause: error });
    }
    return { summary: `${result.summary} (entered the namespace of pid ${state.pid})` };
  }
  if (!options.reexec) throw new HookError(`stage ${stage}: entering the container's namespace needs the hook's own command line`, 'internal');
  // --pid and --net too: proc takes its PID namespace, and sysfs its network namespace, from
  // the process that creates them; made from outside, they would show the host's.
  // Loaded here, not at the top: node:child_process costs about 6 ms to load, on every start of
  // a hook that mostly runs at createContainer, where it is not needed.
  const { spawnSync } = await import('node:child_process');
  const child = spawnSync(
    'nsenter',
    ['--target', String(state.pid), '--mount', '--pid', '--net', '--', ...options.reexec.command, 'createContainer', ...options.reexec.forwardArgs],
    { input: JSON.stringify(state), encoding: 'utf8', env: options.reexec.env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  if (child.error) throw new HookError(`stage ${stage}: cannot run nsenter (util-linux): ${child.error.message}`, 'precondition', { cause: child.error });
  if (child.status !== 0) {
    const why = child.stderr.trim().split('\n').pop() || `exit status ${child.status ?? child.signal}`;
    // Only the line crosses the process boundary, not the kind: a setup that failed, as for any hook command.
    throw new HookError(`stage ${stage}: inside the container's namespace (pid ${state.pid}): ${why.replace(/^mountat-hook: /, '')}`, 'precondition');
  }
  return { summary: `${child.stdout.trim() || 'mounted'} (entered the namespace of pid ${state.pid})` };
}

/**
 * A clean-up that could not open the root is a failed clean-up, whatever the cause: the cause's
 * kind, but a --root-fd the hook was called with wrongly too exits 1 here, not 2, as it always did.
 */
function cleanUpKind(error: unknown): ErrorKind {
  const kind = kindOf(error);
  return kind === 'usage' ? 'invalid-input' : kind;
}

function cleanUp(state: OciState, options: StageOptions): StageResult {
  const records = recordsOf(options);
  const key = recordKey(state);
  const attachment = records.load(key);
  if (!attachment) return { summary: `nothing recorded for container ${state.id}` };
  let rootfs;
  try {
    rootfs = openRoot(state, options);
  } catch (error) {
    // Only a rootfs (or bundle) that is not there any more proves nothing of ours is left in it;
    // any other failure (EACCES, a config.json that cannot be read) keeps the record for a retry.
    if (!(error instanceof RootfsGoneError))
      throw new HookError(`poststop: ${messageOf(error)} (record kept in ${records.pathFor(key)})`, cleanUpKind(error), { cause: error });
    records.remove(key);
    options.log.warn({ error: error.message }, 'rootfs not found at poststop; record dropped');
    return { summary: `rootfs gone, dropped the record (${error.message})` };
  }
  using _root = { [Symbol.dispose]: () => rootfs.close() };
  const mounted = new MountedRoot(rootfs.fd, attachment, records, key);
  try {
    const report = mounted.tearDown();
    options.log.info({ report }, 'cleaned up');
    return { summary: detachSummary(report, 'with the container') };
  } catch (error) {
    if (error instanceof DetachError) options.log.info({ report: error.report }, 'clean-up incomplete; record kept');
    throw new HookError(`poststop: ${messageOf(error)} (record kept in ${mounted.recordPath})`, kindOf(error), { cause: error });
  }
}

export async function runStage(stage: Stage, state: OciState, options: StageOptions): Promise<StageResult> {
  switch (stage) {
    case 'createContainer':
      return mountInContainer(state, containerPlan(state.annotations, options.base), options);
    case 'prestart':
    case 'createRuntime':
      // Validate here too, so a bad annotation is reported before entering anything.
      containerPlan(state.annotations, options.base);
      return mountThroughNsenter(stage, state, options);
    case 'poststop':
      return cleanUp(state, options);
    case 'startContainer':
    case 'poststart':
      throw new HookError(
        `stage ${stage}: mountat-hook mounts at createContainer (or prestart/createRuntime) and cleans up at poststop; it has nothing to do at ${stage}`,
        'usage',
      );
    default: {
      const never: never = stage;
      throw new HookError(`unknown stage ${JSON.stringify(never)}`, 'usage');
    }
  }
}
