// Starting a contained action through dist/mountat-action (native/starter/): have the
// starter server fork it (starter-server.ts), or execute it with posix_spawn (linux/spawn.ts);
// learn the action's pid, open the gate once the caller has
// mounted and run its prestart hooks, and read how the action ended, with its rusage. The C
// source documents the steps and the line protocol on fd 5; protocol.ts parses it.
import { closeSync, openSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { MountatError } from '../base/index.js';
import { constants as C, pidfdOpen, pidfdSendSignal, pipe2, posixSpawn, reapIfExited, type Fd } from '../linux/index.js';
import { StatusChannel, type ActionEnd } from './protocol.js';
import type { StarterServer } from './starter-server.js';
import type { NetworkMode } from './defaults.js';
import type { RootChange } from './root-change.js';

export const STARTER_PATH = fileURLToPath(new URL('../mountat-action', import.meta.url));

export interface RunAs {
  uid: number;
  gid: number;
  groups: number[];
}

/** How an action is contained (defaults in SANDBOX_DEFAULTS; prepareIsolation() fills it in). */
export interface Isolation {
  /** A PID namespace of its own (its pid 1 a small init, the action pid 2). */
  pidNamespace: boolean;
  /** How it is rooted at its input root (root-change.ts): "none" shares the caller's root (bb_runner's non-chroot mode). */
  root: RootChange;
  /** "none": a network namespace with only loopback. */
  network: NetworkMode;
  /** The capabilities a root action keeps, as a mask (src/sandbox/capabilities.ts). */
  capabilities: bigint;
  /** Run as this user, with no capabilities at all. */
  runAs?: RunAs | undefined;
  /** Whether it may make user namespaces (its seccomp filter refuses them otherwise). */
  userNamespaces: boolean;
  /** Refusals of its seccomp filter (seccomp-policy.ts) it does without, by name. */
  allowSyscalls: readonly string[];
}

export interface StartOptions {
  argv: string[];
  env: Record<string, string>;
  /** The input root, as an O_PATH directory fd. */
  root: Fd;
  /**
   * `root` is a detached copy made for this action alone (mounts/detached-copy.ts), its mounts on
   * it: the starter attaches it in the action's namespace as it is, rather than a copy of it, so
   * that it ends with that namespace.
   */
  rootIsCopy?: boolean | undefined;
  /** Relative to the root ("." for the root itself); looked up again beneath the root the action sees. */
  workingDirectory: string;
  /** The action's stdin (default /dev/null), stdout and stderr, as fds of this process. */
  stdin?: number;
  stdout: number;
  stderr: number;
  isolation: Isolation;
  /** SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to the starter reach the action as themselves (`mountat exec`). */
  forwardSignals?: boolean;
  /** Have this server fork the starter (the runner's), instead of executing it. */
  server?: StarterServer | undefined;
  /** The action's cgroup, entered by the starter's child itself before its gate (native/starter/cgroup.c). */
  cgroup?: CgroupFds | undefined;
  /** Its oom_score_adj, written by the starter's child before its gate; absent or null: left as this process's. */
  oomScoreAdj?: number | null | undefined;
  /** Its nice value (0..19), set by the starter's child before its gate, and the floor of what it starts; absent or null: this process's. */
  nice?: number | null | undefined;
}

/** The fds the starter's child enters its cgroup by (CgroupEntry): passed as fds 6 and up. */
export interface CgroupFds {
  /** The v2 directory it is born into. */
  directory?: number | undefined;
  /** cgroup.procs files it writes "0" into. */
  procs: readonly number[];
}

/** The starter's fds from 0: the protocol's six, then the cgroup's, as starterArguments() numbers them. */
export function starterFds(protocol: readonly number[], cgroup: CgroupFds | undefined): number[] {
  if (!cgroup) return [...protocol];
  return [...protocol, ...(cgroup.directory === undefined ? [] : [cgroup.directory]), ...cgroup.procs];
}

/** The starter's command line: what it needs to know of the options (the fds go separately). */
export function starterArguments(
  options: Pick<StartOptions, 'argv' | 'workingDirectory' | 'isolation' | 'forwardSignals' | 'cgroup' | 'oomScoreAdj' | 'nice' | 'rootIsCopy'>,
): string[] {
  const { isolation } = options;
  const args: string[] = [];
  if (isolation.pidNamespace) args.push('--pidns');
  if (isolation.root !== 'pivot') args.push('--root', isolation.root);
  if (options.rootIsCopy) args.push('--root-copy');
  if (options.workingDirectory !== '.') args.push('--cwd', options.workingDirectory);
  if (isolation.network !== 'host') args.push('--network', isolation.network);
  args.push('--caps', isolation.capabilities.toString(16));
  if (isolation.runAs) {
    args.push('--uid', String(isolation.runAs.uid), '--gid', String(isolation.runAs.gid));
    if (isolation.runAs.groups.length > 0) args.push('--groups', isolation.runAs.groups.join(','));
  }
  if (isolation.userNamespaces) args.push('--allow-userns');
  if (isolation.allowSyscalls.length > 0) args.push('--allow-syscalls', isolation.allowSyscalls.join(','));
  if (options.forwardSignals) args.push('--forward-signals');
  // The cgroup's fds follow the protocol's 0-5, in starterFds()'s order.
  const { cgroup } = options;
  let next = FIRST_CGROUP_FD;
  if (cgroup?.directory !== undefined) args.push('--cgroup', String(next++));
  if (cgroup && cgroup.procs.length > 0) args.push('--join', cgroup.procs.map(() => String(next++)).join(','));
  if (options.oomScoreAdj != null) args.push('--oom-score-adj', String(options.oomScoreAdj));
  if (options.nice != null) args.push('--nice', String(options.nice));
  return ['mountat-action', ...args, '--', ...options.argv];
}

/** The first fd after the protocol's six (native/starter/options.h). */
const FIRST_CGROUP_FD = 6;

/** How long a stopped action may take to end before it is killed. */
const STOP_GRACE_MS = 2000;

/**
 * A started action, and its only owner: disposing it stops it (an unopened gate aborted, anything
 * still running after STOP_GRACE_MS killed) and waits for its end, so nothing runs in its root
 * once it is disposed.
 */
export class StartedAction implements AsyncDisposable {
  /** The starter's pid, which is also its process group: known at once when executed, from its first line when served. */
  #starterPid: number | undefined;
  /** Whether this process is the starter's parent (and so reaps it). */
  readonly #executed: boolean;
  /**
   * Signals and the starter's process group are safe to name by pid only while the pid cannot be
   * reused, i.e. until the starter is reaped. An executed starter is reaped here, after its end
   * (#reaped says when). A served one is reaped by the server, at a moment this process does not
   * know: it is signalled through a pidfd, and its group is killed by the server before it reaps.
   */
  #reaped = false;
  #pidfd: Fd | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  /** The action's pid (pid 1 of its PID namespace when there is one), once it exists. */
  readonly pid: Promise<number>;
  readonly ended: Promise<ActionEnd>;
  #gate: number | undefined;

  constructor(options: StartOptions) {
    const [gateRead, gateWrite] = pipe2(C.O_CLOEXEC);
    const [statusRead, statusWrite] = pipe2(C.O_CLOEXEC);
    const stdin = options.stdin ?? openDevNull();
    try {
      const fds = starterFds([stdin, options.stdout, options.stderr, options.root.fd, gateRead, statusWrite], options.cgroup);
      const argv = starterArguments(options);
      this.#executed = !options.server?.start(argv, options.env, fds);
      if (this.#executed) this.#starterPid = posixSpawn(STARTER_PATH, argv, options.env, { ...fds });
    } catch (error) {
      for (const fd of [gateRead, gateWrite, statusRead, statusWrite]) closeSync(fd);
      throw error;
    } finally {
      if (options.stdin === undefined) closeDevNull();
    }
    closeSync(gateRead);
    closeSync(statusWrite);
    this.#gate = gateWrite;

    const channel = new StatusChannel();
    let resolvePid: (pid: number) => void;
    let rejectPid: (error: Error) => void;
    this.pid = new Promise((resolve, reject) => {
      resolvePid = resolve;
      rejectPid = reject;
    });
    this.pid.catch(() => {});
    // A libuv pipe handle (epoll), not a stream read on the thread pool: 32 actions in flight
    // must not take every pool thread.
    const status = new Socket({ fd: statusRead, readable: true, writable: false });
    status.setEncoding('utf8');
    status.on('data', (chunk: string) => {
      const pid = channel.feed(chunk);
      if (this.#starterPid === undefined && channel.starterPid !== undefined) {
        this.#starterPid = channel.starterPid;
        // At its "S" line a served starter waits at the gate, which only we open: it is alive.
        if (!this.#executed) {
          try {
            this.#pidfd = pidfdOpen(this.#starterPid);
          } catch {
            // Out of fds, say: it is then signalled by nothing but its own end, and the server.
          }
        }
      }
      if (pid !== undefined) resolvePid(pid);
      // A broken protocol means something other than the starter wrote: end it all now.
      if (channel.violation !== undefined) this.kill();
    });
    this.ended = new Promise((resolve) => {
      status.on('close', () => {
        channel.close();
        this.#closeGate();
        rejectPid(new MountatError('internal', 'the starter ended before the action existed'));
        // The status pipe closes as the starter (and the action) exit. When it said how the action
        // ended, that is the answer now; the starter is reaped meanwhile (it may be a moment from
        // being a zombie: its fds close before it is one). Only without an answer does its own
        // exit status matter.
        // A served starter is the server's child, reaped there (its group killed first).
        const pid = this.#starterPid;
        clearTimeout(this.#killTimer);
        this.#pidfd?.close();
        this.#pidfd = undefined;
        // An executed starter: kill what is left of its process group (an action without a PID
        // namespace may leave processes there) now, while the unreaped starter pins the pgid.
        if (this.#executed && pid !== undefined) signal(-pid, 'SIGKILL');
        const reaped = this.#executed && pid !== undefined ? reap(pid).finally(() => (this.#reaped = true)) : Promise.resolve(undefined);
        if (channel.exit !== undefined || channel.killedBy !== undefined || channel.startError !== undefined || channel.violation !== undefined)
          resolve(channel.end());
        else void reaped.then((wait) => resolve(channel.end(wait)));
      });
      status.on('error', () => {}); // 'close' follows and settles
    });
  }

  #closeGate(): void {
    if (this.#gate === undefined) return;
    closeSync(this.#gate);
    this.#gate = undefined;
  }

  /** The action's pid once it exists; rejects if the starter ends first. */
  untilPid(): Promise<number> {
    const early = this.ended.then((end) =>
      Promise.reject(new MountatError('internal', `the action's starter ended early: ${end.kind === 'lost' ? end.detail : end.kind}`)),
    );
    return Promise.race([this.pid, early]);
  }

  /** Stop the action and wait for its end: what disposing it does. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.abort();
    let timer: NodeJS.Timeout | undefined;
    const slow = await Promise.race([this.ended.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS, true)))]);
    clearTimeout(timer);
    if (slow) {
      this.kill();
      await this.ended;
    }
  }

  /** Let the action start (after mounts and prestart hooks). */
  open(): void {
    if (this.#gate === undefined) return;
    try {
      writeSync(this.#gate, 'G');
    } catch {
      // The starter is gone already; its end says why.
    }
    this.#closeGate();
  }

  /** Do not start the action after all (prestart failed): it exits at the gate. A no-op once opened. */
  abort(): void {
    this.#closeGate();
  }

  /**
   * Kill the action and everything it started: the starter SIGKILLs pid 1 of the action's PID
   * namespace (which ends the namespace), and the process group goes too for the case without one.
   */
  kill(): void {
    const pid = this.#starterPid;
    if (pid === undefined) return; // not yet running anything: an aborted gate ends it
    this.#signalStarter('SIGTERM');
    // Cleared when the starter ends (before an executed one is reaped); a served starter gets
    // its SIGKILL through the pidfd, and the server kills its group as it reaps it.
    this.#killTimer ??= setTimeout(() => (this.#executed ? signal(-pid, 'SIGKILL') : this.#signalStarter('SIGKILL')), 50).unref();
  }

  /** Pass a signal to the starter (with forwardSignals it reaches the action as itself). */
  signal(name: NodeJS.Signals): void {
    this.#signalStarter(name);
  }

  #signalStarter(name: NodeJS.Signals): void {
    if (this.#starterPid === undefined) return;
    if (this.#executed) {
      if (!this.#reaped) signal(this.#starterPid, name);
    } else if (this.#pidfd) {
      try {
        pidfdSendSignal(this.#pidfd, osConstants.signals[name]);
      } catch {
        // As signal(): nothing to do about a starter that cannot be signalled (it ends on its own).
      }
    }
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The starter exits right after closing the status pipe; poll briefly instead of blocking. */
async function reap(pid: number): Promise<number> {
  for (let delay = 0; ; delay = Math.min(delay + 1, 20)) {
    let status: number | undefined;
    try {
      status = reapIfExited(pid);
    } catch {
      return 0; // not our child any more (ECHILD): nothing left to reap
    }
    if (status !== undefined) return status;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

let devNull: number | undefined;
let devNullUsers = 0;
/** /dev/null for the starter's stdin, opened once per spawn (cheap) and closed after it. */
function openDevNull(): number {
  devNull ??= openSync('/dev/null', 'r');
  devNullUsers++;
  return devNull;
}
function closeDevNull(): void {
  if (--devNullUsers === 0 && devNull !== undefined) {
    closeSync(devNull);
    devNull = undefined;
  }
}
