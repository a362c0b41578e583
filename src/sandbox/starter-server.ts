// `mountat-action --serve` (native/starter/server.c): one process, started once by the runner,
// that forks a starter per action. Executing the starter per action cost about 1 ms of the
// runner's own time (posix_spawn returns only once the child has executed it); sending one message
// with six fds costs a few syscalls. The starter it forks is the same code, speaking the same
// protocol on its own status pipe.
import { closeSync, openSync } from 'node:fs';
import { isErrno, posixSpawn, reapIfExited, seqpacketPair, sendWithFds } from '../linux/index.js';

/**
 * Larger requests (a huge environment) are started the direct way instead: a SOCK_SEQPACKET
 * message must fit the socket's send buffer (net.core.wmem_default, 208 KiB on Debian), or
 * sendmsg fails with EMSGSIZE.
 */
export const MAX_SERVED_REQUEST = 128 * 1024;

export class StarterServer {
  #socket: number | undefined;
  #pid: number | undefined;

  constructor(private readonly starterPath: string) {}

  /** Start the starter `argv` (argv[0] first) with `env` and fds 0 to 5 as given; false if it cannot be served. */
  start(argv: string[], env: Record<string, string>, fds: readonly number[]): boolean {
    const payload = Buffer.from(
      [String(argv.length), ...argv, ...Object.entries(env).map(([key, value]) => `${key}=${value}`)].map((text) => `${text}\0`).join(''),
    );
    if (payload.length > MAX_SERVED_REQUEST) return false;
    try {
      sendWithFds(this.#connect(), payload, fds);
      return true;
    } catch (error) {
      // Only a server that is gone (killed, or it failed) is replaced: closing a live one would
      // end every action it started (they die with it).
      if (!isErrno(error, 'EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ENOTCONN')) throw error;
      this.close();
      sendWithFds(this.#connect(), payload, fds);
      return true;
    }
  }

  #connect(): number {
    if (this.#socket !== undefined) return this.#socket;
    const [ours, theirs] = seqpacketPair();
    const devNull = openSync('/dev/null', 'r+');
    try {
      this.#pid = posixSpawn(this.starterPath, ['mountat-action', '--serve'], {}, { 0: devNull, 1: devNull, 2: 2, 3: theirs });
    } catch (error) {
      closeSync(ours);
      throw error;
    } finally {
      closeSync(theirs);
      closeSync(devNull);
    }
    this.#socket = ours;
    return ours;
  }

  /** Close the socket: the server ends (and any starter still running dies with it). */
  close(): void {
    if (this.#socket !== undefined) closeSync(this.#socket);
    this.#socket = undefined;
    if (this.#pid !== undefined) reapSoon(this.#pid);
    this.#pid = undefined;
  }
}

/** The server exits when its socket closes; reap it without waiting here. */
function reapSoon(pid: number, tries = 200): void {
  try {
    if (reapIfExited(pid) !== undefined) return;
  } catch {
    return;
  }
  if (tries > 0) setTimeout(() => reapSoon(pid, tries - 1), 10).unref();
}
