// The starter's status lines (native/starter/protocol.h documents them), parsed strictly: its own
// pid ("S") first, then exactly one "P", then any "E", at most one "X" and one "K" (in either
// order; "X" first only), and nothing after them. Only the starter and the
// PID namespace's init hold the pipe; a line out of that order, malformed or unknown means the
// channel cannot be trusted, and the action's end is then reported lost rather than believed.
import { errnoName } from '../linux/index.js';
import { START_STEPS, type StartStep } from './start-steps.js';

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
  /**
   * `killedFromOutside`: the init was killed with everything in its namespace (its cgroup emptied,
   * an OOM kill of the whole action) before it said how the action ended: the command may never
   * have run, and its root may never have been entered.
   */
  | { kind: 'signalled'; signal: number; rusage: Rusage; killedFromOutside?: true }
  /** A step of starting failed (the starter names it, from START_STEPS): the command never ran. */
  | { kind: 'start-failed'; errno: number; code: string; step: StartStep }
  /** The starter ended without saying how the action ended (killed, aborted at the gate, or it broke the protocol). */
  | { kind: 'lost'; detail: string };

/**
 * Whether the starter said how the command ended: it had then entered its root (attached a copy
 * of it in the action's namespace) and run it. Not where it failed to start, was killed from
 * outside first, or was never heard of.
 */
export function commandEnded(end: ActionEnd | undefined): boolean {
  return end?.kind === 'exited' || (end?.kind === 'signalled' && end.killedFromOutside !== true);
}

const MAX_LINE = 512;
/** The rusage of an action that was killed with its init: no wait4 saw it (its cgroup has the figures). */
export const NO_RUSAGE: Rusage = {
  userMicros: 0,
  systemMicros: 0,
  maxRssKiB: 0,
  minflt: 0,
  majflt: 0,
  nswap: 0,
  inblock: 0,
  oublock: 0,
  msgsnd: 0,
  msgrcv: 0,
  nsignals: 0,
  nvcsw: 0,
  nivcsw: 0,
};
const INTEGER = /^-?\d{1,20}$/;

export class StatusChannel {
  /** The starter's own pid (its process group). */
  starterPid: number | undefined;
  pid: number | undefined;
  startError: { errno: number; step: StartStep } | undefined;
  /** The raw "X" fields: wait status, then the rusage. */
  exit: number[] | undefined;
  /** Set once a line broke the protocol; nothing after it is believed. */
  violation: string | undefined;
  /** The signal that killed the init with everything in its namespace ("K"), where one did. */
  killedBy: number | undefined;
  #buffered = '';

  /** Feed what the pipe gave; returns the pid when this chunk carried the "P" line. */
  feed(chunk: string): number | undefined {
    if (this.violation !== undefined) return undefined;
    const hadPid = this.pid !== undefined;
    this.#buffered += chunk;
    let newline;
    while ((newline = this.#buffered.indexOf('\n')) >= 0) {
      const line = this.#buffered.slice(0, newline);
      this.#buffered = this.#buffered.slice(newline + 1);
      const why = this.#line(line);
      if (why !== undefined) {
        this.violation = `${why}: ${JSON.stringify(line.slice(0, 80))}`;
        return undefined;
      }
    }
    if (this.#buffered.length > MAX_LINE) this.violation = 'a line longer than the protocol allows';
    return hadPid ? undefined : this.pid;
  }

  /** The pipe closed: anything left unterminated breaks the protocol. */
  close(): void {
    if (this.violation === undefined && this.#buffered !== '') this.violation = `an unterminated line: ${JSON.stringify(this.#buffered.slice(0, 80))}`;
  }

  #line(line: string): string | undefined {
    const [tag, ...fields] = line.split(' ');
    // The starter's "K" comes after the init's "X" where the init was killed between reporting
    // and exiting: the init's report stands.
    if (this.exit !== undefined && tag === 'K' && this.killedBy === undefined) return this.#killed(fields);
    if (this.exit !== undefined) return "a line after the action's end";
    switch (tag) {
      case 'S':
        if (this.starterPid !== undefined || this.pid !== undefined || this.startError !== undefined) return 'a starter line out of place';
        if (fields.length !== 1 || !INTEGER.test(fields[0]!) || Number(fields[0]) <= 0) return 'a malformed starter line';
        this.starterPid = Number(fields[0]);
        return undefined;
      case 'P':
        if (this.pid !== undefined) return 'a second pid line';
        if (fields.length !== 1 || !INTEGER.test(fields[0]!) || Number(fields[0]) <= 0) return 'a malformed pid line';
        this.pid = Number(fields[0]);
        return undefined;
      case 'E': {
        const step = START_STEPS.find((known) => known === fields[1]);
        if (fields.length !== 2 || !INTEGER.test(fields[0]!) || step === undefined) return 'a malformed start-error line';
        this.startError ??= { errno: Number(fields[0]), step };
        return undefined;
      }
      case 'K':
        if (this.pid === undefined) return 'an end before the pid';
        if (this.killedBy !== undefined) return 'a second kill line';
        return this.#killed(fields);
      case 'X':
        if (this.pid === undefined) return 'an end before the pid';
        if (this.killedBy !== undefined) return 'an end after the kill line';
        if (fields.length !== 14 || !fields.every((field) => INTEGER.test(field))) return 'a malformed end line';
        this.exit = fields.map(Number);
        return undefined;
      default:
        return 'an unknown line';
    }
  }

  #killed(fields: string[]): string | undefined {
    if (fields.length !== 1 || !INTEGER.test(fields[0]!) || Number(fields[0]) <= 0 || Number(fields[0]) > 64) return 'a malformed kill line';
    this.killedBy = Number(fields[0]);
    return undefined;
  }

  /** How the action ended, given how the starter itself ended (its raw wait status, where known). */
  end(starterWait?: number): ActionEnd {
    if (this.violation !== undefined) return { kind: 'lost', detail: `the starter's status channel broke protocol (${this.violation})` };
    const n = this.exit;
    const start = this.startError;
    if (n) {
      const wait = n[0]!;
      // Exit status 127 after an "E" line is the starter's own report of a failed step.
      if (start && (wait & 0x7f) === 0 && ((wait >> 8) & 0xff) === 127) return { kind: 'start-failed', ...start, code: errnoName(start.errno) };
      const rusage: Rusage = {
        userMicros: n[1]!,
        systemMicros: n[2]!,
        maxRssKiB: n[3]!,
        minflt: n[4]!,
        majflt: n[5]!,
        nswap: n[6]!,
        inblock: n[7]!,
        oublock: n[8]!,
        msgsnd: n[9]!,
        msgrcv: n[10]!,
        nsignals: n[11]!,
        nvcsw: n[12]!,
        nivcsw: n[13]!,
      };
      if ((wait & 0x7f) === 0) return { kind: 'exited', code: (wait >> 8) & 0xff, rusage };
      return { kind: 'signalled', signal: wait & 0x7f, rusage };
    }
    if (start) return { kind: 'start-failed', ...start, code: errnoName(start.errno) };
    // Killed with its init: no wait4 of the action; its cgroup has the figures.
    if (this.killedBy !== undefined) return { kind: 'signalled', signal: this.killedBy, rusage: NO_RUSAGE, killedFromOutside: true };
    if (starterWait === undefined) return { kind: 'lost', detail: 'the starter ended without saying how the action ended' };
    const detail =
      (starterWait & 0x7f) !== 0 ? `the starter was killed by signal ${starterWait & 0x7f}` : `the starter exited with status ${(starterWait >> 8) & 0xff}`;
    return { kind: 'lost', detail };
  }
}
