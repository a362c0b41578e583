// Starting an action through dist/mountat-action (native/action-starter.c): spawn it (with
// posix_spawn, see linux/spawn.ts), learn the action's pid, open the gate once the runner has
// mounted and run its prestart hooks, and read how the action ended, with its rusage. See the C
// source for the line protocol on fd 5.
import { closeSync, openSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { constants as C, errnoName, pipe2, posixSpawn, reapIfExited, type Fd } from '../linux/index.js';

const O_CLOEXEC = C.O_CLOEXEC;

export const STARTER_PATH = fileURLToPath(new URL('../mountat-action', import.meta.url));

export interface Rusage {
  userMicros: number;
  systemMicros: number;
  maxRssKiB: number;
  minflt: number;
  majflt: number;
  nswap: number;
  inblock: number;
  oublock: number;
  msgsnd: number;
  msgrcv: number;
  nsignals: number;
  nvcsw: number;
  nivcsw: number;
}

export type ActionEnd =
  | { kind: 'exited'; code: number; rusage: Rusage }
  | { kind: 'signalled'; signal: number; rusage: Rusage }
  /** A step of starting failed (native/action-starter.c names it): the command never ran. */
  | { kind: 'start-failed'; errno: number; code: string; step: string }
  /** The starter ended without saying how the action ended (killed, or aborted at the gate). */
  | { kind: 'lost'; detail: string };

export interface StartOptions {
  argv: string[];
  env: Record<string, string>;
  root: Fd;
  workingDirectory: Fd;
  stdout: Fd;
  stderr: Fd;
  pidNamespace: boolean;
  chroot: boolean;
  runAs?: { uid: number; gid: number; groups: number[] } | undefined;
}

export class StartedAction {
  /** The starter's pid, which is also its process group. */
  readonly starterPid: number;
  /** The action's pid (pid 1 of its PID namespace when there is one), once it exists. */
  readonly pid: Promise<number>;
  readonly ended: Promise<ActionEnd>;
  #gate: number | undefined;

  constructor(options: StartOptions) {
    const args: string[] = [];
    if (options.pidNamespace) args.push('--pidns');
    if (!options.chroot) args.push('--no-chroot');
    if (options.runAs) {
      args.push('--uid', String(options.runAs.uid), '--gid', String(options.runAs.gid));
      if (options.runAs.groups.length > 0) args.push('--groups', options.runAs.groups.join(','));
    }
    const [gateRead, gateWrite] = pipe2(O_CLOEXEC);
    const [statusRead, statusWrite] = pipe2(O_CLOEXEC);
    try {
      this.starterPid = posixSpawn(STARTER_PATH, ['mountat-action', ...args, '--', ...options.argv], options.env, {
        0: openDevNull(),
        1: options.stdout.fd,
        2: options.stderr.fd,
        3: options.root.fd,
        4: gateRead,
        5: statusWrite,
        6: options.workingDirectory.fd,
      });
    } catch (error) {
      for (const fd of [gateRead, gateWrite, statusRead, statusWrite]) closeSync(fd);
      throw error;
    } finally {
      closeDevNull();
    }
    closeSync(gateRead);
    closeSync(statusWrite);
    this.#gate = gateWrite;

    let startError: { errno: number; step: string } | undefined;
    let end: ActionEnd | undefined;
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
    let buffered = '';
    status.setEncoding('utf8');
    status.on('data', (chunk: string) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const [tag, ...fields] = buffered.slice(0, newline).split(' ');
        buffered = buffered.slice(newline + 1);
        const n = fields.map(Number);
        if (tag === 'P') resolvePid(n[0]!);
        else if (tag === 'E') startError ??= { errno: n[0]!, step: fields[1] ?? 'start' };
        else if (tag === 'X' && !end) end = endFrom(n, startError);
      }
    });
    this.ended = new Promise((resolve) => {
      status.on('close', () => {
        this.#closeGate();
        rejectPid(new Error('the starter ended before the action existed'));
        // The status pipe closes when the starter (and the action) are gone; reap the starter.
        void reap(this.starterPid).then((wait) => {
          if (end) resolve(end);
          else if (startError) resolve({ kind: 'start-failed', ...startError, code: errnoName(startError.errno) });
          else resolve({ kind: 'lost', detail: (wait & 0x7f) !== 0 ? `the starter was killed by signal ${wait & 0x7f}` : `the starter exited with status ${(wait >> 8) & 0xff}` });
        });
      });
      status.on('error', () => {}); // 'close' follows and settles
    });
  }

  #closeGate(): void {
    if (this.#gate === undefined) return;
    closeSync(this.#gate);
    this.#gate = undefined;
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

  /** Do not start the action after all (prestart failed): it exits at the gate. */
  abort(): void {
    this.#closeGate();
  }

  /**
   * Kill the action and everything it started: the starter SIGKILLs pid 1 of the action's PID
   * namespace (which ends the namespace), and the process group goes too for the case without one.
   */
  kill(): void {
    signal(this.starterPid, 'SIGTERM');
    setTimeout(() => signal(-this.starterPid, 'SIGKILL'), 50).unref();
  }

  /** After the action ended: kill leftovers of its process group (without a PID namespace they survive it). */
  killLeftovers(): void {
    signal(-this.starterPid, 'SIGKILL');
  }
}

function endFrom(n: number[], startError: { errno: number; step: string } | undefined): ActionEnd {
  const rusage: Rusage = {
    userMicros: n[1]!, systemMicros: n[2]!, maxRssKiB: n[3]!, minflt: n[4]!, majflt: n[5]!, nswap: n[6]!,
    inblock: n[7]!, oublock: n[8]!, msgsnd: n[9]!, msgrcv: n[10]!, nsignals: n[11]!, nvcsw: n[12]!, nivcsw: n[13]!,
  };
  const wait = n[0]!;
  // Exit status 127 after an "E" line is the starter's own report of a failed exec.
  if (startError && (wait & 0x7f) === 0 && ((wait >> 8) & 0xff) === 127) return { kind: 'start-failed', ...startError, code: errnoName(startError.errno) };
  if ((wait & 0x7f) === 0) return { kind: 'exited', code: (wait >> 8) & 0xff, rusage };
  return { kind: 'signalled', signal: wait & 0x7f, rusage };
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
    const status = reapIfExited(pid);
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
