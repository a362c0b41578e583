// Starting an action through dist/mountat-action (native/action-starter.c): spawn it, learn the
// action's pid, open the gate once the runner has mounted and run its prestart hooks, and read
// how the action ended, with its rusage. See the C source for the line protocol on fd 5.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { errnoName, type Fd } from '../linux/index.js';

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
  /** chroot, chdir, credentials or exec failed: the command never ran. */
  | { kind: 'start-failed'; errno: number; code: string }
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
  readonly child: ChildProcess;
  /** The action's pid (pid 1 of its PID namespace when there is one), once it exists. */
  readonly pid: Promise<number>;
  readonly ended: Promise<ActionEnd>;
  #gate: Writable;

  constructor(options: StartOptions) {
    const args: string[] = [];
    if (options.pidNamespace) args.push('--pidns');
    if (!options.chroot) args.push('--no-chroot');
    if (options.runAs) {
      args.push('--uid', String(options.runAs.uid), '--gid', String(options.runAs.gid));
      if (options.runAs.groups.length > 0) args.push('--groups', options.runAs.groups.join(','));
    }
    this.child = spawn(STARTER_PATH, [...args, '--', ...options.argv], {
      env: options.env,
      stdio: ['ignore', options.stdout.fd, options.stderr.fd, options.root.fd, 'pipe', 'pipe', options.workingDirectory.fd],
    });
    const pipes = this.child.stdio as unknown as Array<Readable & Writable>;
    this.#gate = pipes[4]!;
    this.#gate.on('error', () => {}); // the starter may be gone already; its end says why
    const status = pipes[5]!;
    let buffered = '';
    let startError: { errno: number } | undefined;
    let end: ActionEnd | undefined;
    let resolvePid: (pid: number) => void;
    let rejectPid: (error: Error) => void;
    this.pid = new Promise((resolve, reject) => {
      resolvePid = resolve;
      rejectPid = reject;
    });
    this.pid.catch(() => {});
    status.setEncoding('utf8');
    status.on('data', (chunk: string) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const [tag, ...fields] = buffered.slice(0, newline).split(' ');
        buffered = buffered.slice(newline + 1);
        const n = fields.map(Number);
        if (tag === 'P') resolvePid(n[0]!);
        else if (tag === 'E') startError ??= { errno: n[0]! };
        else if (tag === 'X' && !end) {
          const rusage: Rusage = {
            userMicros: n[1]!, systemMicros: n[2]!, maxRssKiB: n[3]!, minflt: n[4]!, majflt: n[5]!, nswap: n[6]!,
            inblock: n[7]!, oublock: n[8]!, msgsnd: n[9]!, msgrcv: n[10]!, nsignals: n[11]!, nvcsw: n[12]!, nivcsw: n[13]!,
          };
          const wait = n[0]!;
          // Exit status 127 after an "E" line is the starter's own report of a failed exec.
          if (startError && (wait & 0x7f) === 0 && ((wait >> 8) & 0xff) === 127) end = { kind: 'start-failed', errno: startError.errno, code: errnoName(startError.errno) };
          else if ((wait & 0x7f) === 0) end = { kind: 'exited', code: (wait >> 8) & 0xff, rusage };
          else end = { kind: 'signalled', signal: wait & 0x7f, rusage };
        }
      }
    });
    this.ended = new Promise((resolve) => {
      let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let streamDone = false;
      const settle = () => {
        if (!exited || !streamDone) return;
        rejectPid(new Error('the starter ended before the action existed'));
        if (end) resolve(end);
        else if (startError) resolve({ kind: 'start-failed', errno: startError.errno, code: errnoName(startError.errno) });
        else resolve({ kind: 'lost', detail: exited.signal ? `the starter was killed by ${exited.signal}` : `the starter exited with status ${exited.code}` });
      };
      status.on('close', () => {
        streamDone = true;
        settle();
      });
      this.child.on('exit', (code, signal) => {
        exited = { code, signal };
        settle();
      });
      this.child.on('error', (error) => {
        exited = { code: null, signal: null };
        streamDone = true;
        startError = undefined;
        end = { kind: 'lost', detail: `cannot run ${STARTER_PATH}: ${error.message}` };
        settle();
      });
    });
  }

  /** Let the action start (after mounts and prestart hooks). */
  open(): void {
    this.#gate.end('G');
  }

  /** Do not start the action after all (prestart failed): it exits at the gate. */
  abort(): void {
    this.#gate.end();
  }

  /**
   * Kill the action and everything it started: the starter SIGKILLs pid 1 of the action's PID
   * namespace (which ends the namespace), and the process group goes too for the case without one.
   */
  kill(): void {
    try {
      this.child.kill('SIGTERM');
    } catch {}
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    setTimeout(() => {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {}
    }, 50).unref();
  }

  /** After the action ended: kill leftovers of its process group (without a PID namespace they survive it). */
  killLeftovers(): void {
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {}
  }
}
