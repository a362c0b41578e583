// `mountat exec --root DIR [--plan FILE] [--cwd D] [--network host|none] [--capabilities LIST]
// [--allow-user-namespaces] [--allow-syscall NAME]… -- CMD ARGS…`: the runner's containment for one
// command at a terminal. The command is started through the same starter as the runner's actions
// (native/starter/): its own PID, mount, IPC, UTS and cgroup namespaces, rooted at DIR with
// pivot_root, capabilities reduced, NO_NEW_PRIVS, only fds 0-2, a session keyring and a seccomp
// filter of its own.
// The plan is mounted once its PID namespace exists (so proc shows only its processes), and
// always unmounted: after it exits, fails to start, or we are signalled. The lifecycle is the
// runner's (src/sandbox/contained.ts), with the mounts as its only setup.
import { CAPABILITY_NAMES, openPidNamespace, ownCapabilities, probePivotRoot, probeProcPidns, type CapabilityName } from '../linux/index.js';
import { describeError, kindOf, MountatError } from '../base/index.js';
import { DetachError, RecordStore, type MountedRoot } from '../mounts/index.js';
import {
  ActionCgroups,
  NETWORK_MODES,
  prepareIsolation,
  runContained,
  SANDBOX_DEFAULTS,
  whyNotAllowable,
  type CgroupLimits,
  type LimitName,
  type NetworkMode,
  type StartedAction,
} from '../sandbox/index.js';
import { loadPlan, openRoot } from './inputs.js';
import { mountRoot } from './mount.js';
import { describeReport } from './umount.js';
import { UsageError } from './usage-error.js';

export interface ExecArgs {
  root: string | undefined;
  plan: string | undefined;
  cwd: string | undefined;
  stateDir: string;
  network?: string | undefined;
  capabilities?: string | undefined;
  allowUserNamespaces?: boolean;
  /** --allow-syscall, each given. */
  allowSyscalls?: string[];
  /** --pids, --memory, --cpus, --cpu-weight, --oom-score-adj, --nice, --cgroup-parent as given. */
  pids?: string | undefined;
  memory?: string | undefined;
  cpus?: string | undefined;
  cpuWeight?: string | undefined;
  oomScoreAdj?: string | undefined;
  nice?: string | undefined;
  cgroupParent?: string | undefined;
  command: string[];
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

function networkFrom(text: string | undefined): NetworkMode {
  if (text === undefined) return SANDBOX_DEFAULTS.network;
  const mode = NETWORK_MODES.find((known) => known === text);
  if (mode === undefined) throw new UsageError(`--network ${JSON.stringify(text)}: one of ${NETWORK_MODES.join(', ')}`);
  return mode;
}

/** "CAP_CHOWN,fowner" → names; "" for none. */
function capabilitiesFrom(text: string | undefined): CapabilityName[] {
  if (text === undefined) return [...SANDBOX_DEFAULTS.capabilities];
  return text
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
    .map((name) => {
      const upper = name.toUpperCase();
      const full = CAPABILITY_NAMES.find((known) => known === (upper.startsWith('CAP_') ? upper : `CAP_${upper}`));
      if (full === undefined) throw new UsageError(`--capabilities: unknown capability ${JSON.stringify(name)}`);
      return full;
    });
}

/** --allow-syscall NAME…, each a refusal of the seccomp filter that may be allowed back. */
function allowedSyscallsFrom(names: readonly string[] | undefined): string[] {
  for (const name of names ?? []) {
    const why = whyNotAllowable(name, '--allow-user-namespaces');
    if (why !== undefined) throw new UsageError(`--allow-syscall ${JSON.stringify(name)}: ${why}`);
  }
  return [...(names ?? SANDBOX_DEFAULTS.allowSyscalls)];
}

/** An integer option within [min, max]; `none` for null where allowed. */
function integerFrom(flag: string, text: string, min: number, max: number, none = false): number | null {
  if (none && text === 'none') return null;
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max)
    throw new UsageError(`${flag} ${JSON.stringify(text)}: an integer from ${min} to ${max}${none ? ', or none' : ''}`);
  return Number(text);
}

const SUFFIXES: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** --memory 512M: bytes, with an optional K, M or G suffix (powers of 1024). */
function bytesFrom(text: string): number {
  const match = /^(\d+)([KMG]?)$/i.exec(text);
  const bytes = match ? Number(match[1]) * SUFFIXES[match[2]!.toUpperCase()]! : NaN;
  if (!(bytes >= 4 * 1024 ** 2) || !Number.isSafeInteger(bytes))
    throw new UsageError(`--memory ${JSON.stringify(text)}: bytes (4M or more), with an optional K, M or G suffix`);
  return bytes;
}

/** The command's cgroup limits (the runner's defaults where not given), and which were given. */
function limitsFrom(args: ExecArgs): { limits: CgroupLimits; required: LimitName[] } {
  const defaults = SANDBOX_DEFAULTS.limits;
  const required: LimitName[] = [];
  const pids = args.pids === undefined ? defaults.pids : integerFrom('--pids', args.pids, 1, 4194304, true);
  if (args.pids !== undefined && pids !== null) required.push('pids');
  const memoryBytes = args.memory === undefined ? defaults.memoryBytes : bytesFrom(args.memory);
  if (memoryBytes !== null && args.memory !== undefined) required.push('memoryBytes');
  let cpu = defaults.cpu;
  if (args.cpus !== undefined || args.cpuWeight !== undefined) {
    const quota = args.cpus === undefined ? undefined : Number(args.cpus);
    if (quota !== undefined && !(quota > 0 && quota <= 1024)) throw new UsageError(`--cpus ${JSON.stringify(args.cpus)}: a number of CPUs above 0, e.g. 1.5`);
    const weight = args.cpuWeight === undefined ? undefined : (integerFrom('--cpu-weight', args.cpuWeight, 1, 10000) ?? undefined);
    cpu = { quota, weight };
    required.push('cpu');
  }
  const oomScoreAdj = args.oomScoreAdj === undefined ? defaults.oomScoreAdj : integerFrom('--oom-score-adj', args.oomScoreAdj, -1000, 1000);
  const nice = args.nice === undefined ? defaults.nice : integerFrom('--nice', args.nice, 0, 19);
  if (args.cgroupParent !== undefined && !args.cgroupParent.startsWith('/'))
    throw new UsageError(`--cgroup-parent ${JSON.stringify(args.cgroupParent)}: a cgroup path, starting with /`);
  return { limits: { pids, memoryBytes, cpu, oomScoreAdj, nice }, required };
}

export async function execCommand(args: ExecArgs, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (args.command.length === 0) throw new UsageError('exec needs a command after --');
  const cwd = args.cwd ?? '/';
  if (!cwd.startsWith('/')) throw new UsageError(`--cwd ${cwd}: give it as an absolute path inside the root`);
  const workingDirectory =
    cwd
      .split('/')
      .filter((part) => part !== '' && part !== '.')
      .join('/') || '.';
  const network = networkFrom(args.network);
  const asked = capabilitiesFrom(args.capabilities);
  const allowSyscalls = allowedSyscallsFrom(args.allowSyscalls);
  const { limits, required } = limitsFrom(args);
  const plan = loadPlan(args.plan);
  using root = openRoot(args.root);
  const store = new RecordStore(args.stateDir);
  const { isolation, warnings } = prepareIsolation(
    {
      rooted: true,
      pidNamespace: SANDBOX_DEFAULTS.pidNamespace,
      network,
      capabilities: asked,
      runAs: undefined,
      userNamespaces: args.allowUserNamespaces ?? SANDBOX_DEFAULTS.userNamespaces,
      allowSyscalls,
    },
    { own: ownCapabilities(), pivotRoot: probePivotRoot(), procPidns: probeProcPidns() === true },
    'mountat exec',
  );
  for (const { message } of warnings) err(`mountat: warning: ${message}`);
  // The command's own cgroup, below this process's (never moved: its cgroup is its caller's).
  const opened = ActionCgroups.open({ limits, parent: args.cgroupParent, moveIntoLeaf: false });
  using cgroups = opened.cgroups;
  const refused = opened.unavailable.find((u) => (required as string[]).includes(u.what));
  if (refused) throw new MountatError('precondition', `the ${refused.what} limit cannot be enforced: ${refused.why}`);
  // Only what was asked for is worth a word: without a cgroup the command still runs, as before.

  // A signal that arrives before the command runs must not kill us between attach and detach:
  // remember it, and pass it on once the command runs.
  const stop: { signal?: NodeJS.Signals; started?: StartedAction } = {};
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.started) stop.started.signal(signal);
    else stop.signal ??= signal;
  };
  for (const signal of FORWARDED) process.on(signal, onSignal);
  try {
    const { outcome, teardown, cgroup } = await runContained({
      argv0: args.command[0]!,
      rootName: 'the root',
      cgroups,
      oomScoreAdj: limits.oomScoreAdj,
      nice: limits.nice,
      request: () => ({
        argv: args.command,
        env: Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined)),
        root,
        workingDirectory,
        stdin: 0,
        stdout: 1,
        stderr: 2,
        isolation,
        forwardSignals: true,
      }),
      setUp: (pid, undos) => {
        // proc shows the command's PID namespace: made from outside it, through proc's pidns option.
        // The record (under the root's key, as `mountat mount`'s) lets `mountat umount` clean up
        // should this process be SIGKILLed.
        using pidns = isolation.pidNamespace ? openPidNamespace(pid) : undefined;
        const attempt = mountRoot(root, args.root, plan, store, pidns);
        // What a failed rollback left is owned too: tried again once the command has stopped.
        const owned = attempt.mounted ?? attempt.leftover;
        if (owned) undos.defer(() => unmount(owned, out));
        if (attempt.error) throw attempt.error;
      },
      running: (started) => {
        stop.started = started;
        if (stop.signal) started.signal(stop.signal);
      },
    });
    if (cgroup?.oomKilled) err('mountat: the command ran out of memory: the kernel killed it, and with it everything it had started');
    for (const failure of teardown) err(`mountat: ${describeError(failure)}`);
    if (outcome.failure) err(`mountat: ${describeError(outcome.failure)}`);
    return outcome.exitCode;
  } finally {
    for (const signal of FORWARDED) process.off(signal, onSignal);
  }
}

/** Unmount what exec mounted; on failure, say what was done and that the record is kept for `mountat umount`. */
function unmount(owner: MountedRoot, out: (line: string) => void): void {
  try {
    owner.tearDown();
  } catch (error) {
    if (error instanceof DetachError) describeReport(error.report, out);
    throw MountatError.wrap(kindOf(error), `teardown failed, record kept in ${owner.recordPath}`, error);
  }
}
