// The hook server: one long-lived Node process that runs mountat-hook's stages for the launcher
// (native/hook-launcher.c), so that a container start pays a connect and a few system calls
// instead of a Node start per hook. The launcher falls back to starting node itself whenever the
// socket is absent or refuses it: nothing depends on the server running.
//
// The socket is root's: 0600 in a directory that must be root's and 0700, and each peer is
// checked again (hook-peer.ts). Requests are served by worker threads blocked in accept4
// (hook-server-worker.ts), each able to move into a container's mount namespace on its own.
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { MountatError, messageOf } from '../base/index.js';
import { Fd, flock, isErrno, listenSeqpacket, LOCK_EX, LOCK_NB, shutdownListener } from '../linux/index.js';

/** Where the launcher looks for the server unless its --hook-socket says otherwise. */
export const DEFAULT_HOOK_SOCKET = '/run/mountat/hook.sock';

export interface HookServerOptions {
  socketPath: string;
  /** Requests served at once: each worker thread serves one. */
  workers: number;
  /** A line for the operator (refused peers, a worker's failure). */
  log: (line: string) => void;
  /** How long a connected peer may take to send its request (default 10 s). */
  receiveTimeoutMs?: number;
}

export interface HookServer {
  socketPath: string;
  /** Settles when the server stopped: rejected when a worker failed (the server then stops). */
  stopped: Promise<void>;
  /** Stop accepting, let requests in flight finish, remove the socket. */
  close(): Promise<void>;
}

/** The socket's directory: made 0700 if missing, refused unless root's and closed to everyone else. */
function checkDirectory(directory: string): void {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const st = lstatSync(directory);
  if (!st.isDirectory()) throw new MountatError('precondition', `${directory}: not a directory (the hook socket's directory)`);
  if (st.uid !== 0 || (st.mode & 0o077) !== 0)
    throw new MountatError(
      'precondition',
      `${directory}: owned by uid ${st.uid}, mode ${(st.mode & 0o777).toString(8)}: the hook socket's directory must be root's and 0700`,
    );
}

export async function startHookServer(options: HookServerOptions): Promise<HookServer> {
  const { socketPath } = options;
  if (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > 64)
    throw new MountatError('usage', `workers ${options.workers}: give 1 to 64`);
  checkDirectory(dirname(socketPath));
  // One server per socket: the lock proves that a socket left there is a dead server's.
  const lock = new Fd(openSync(`${socketPath}.lock`, 'a', 0o600));
  try {
    flock(lock, LOCK_EX | LOCK_NB, `${socketPath}.lock`);
  } catch (error) {
    lock.close();
    if (isErrno(error, 'EWOULDBLOCK', 'EAGAIN')) throw new MountatError('precondition', `another hook server serves ${socketPath}`, { cause: error });
    throw error;
  }
  let listener: Fd;
  try {
    rmSync(socketPath, { force: true });
    listener = listenSeqpacket(socketPath, 128);
    chmodSync(socketPath, 0o600);
  } catch (error) {
    lock.close();
    throw MountatError.wrap('precondition', `listen on ${socketPath}`, error);
  }

  const workerUrl = new URL('./hook-server-worker.js', import.meta.url);
  const workers: Worker[] = [];
  const exits: Promise<void>[] = [];
  let failure: unknown;
  let closing: Promise<void> | undefined;
  const ready: Promise<void>[] = [];
  for (let i = 0; i < options.workers; i++) {
    const worker = new Worker(workerUrl, { workerData: { listener: listener.fd, receiveTimeoutMs: options.receiveTimeoutMs ?? 10_000 } });
    workers.push(worker);
    ready.push(
      new Promise((resolve, reject) => {
        worker.on('message', (message: { log?: string; ready?: boolean }) => {
          if (message.ready) resolve();
          if (message.log) options.log(message.log);
        });
        worker.once('error', reject);
      }),
    );
    exits.push(
      new Promise((resolve) => {
        worker.once('error', (error) => {
          failure ??= error;
          options.log(`a worker failed: ${messageOf(error)}; stopping`);
          void close();
        });
        worker.once('exit', () => resolve());
      }),
    );
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      rmSync(socketPath, { force: true });
      shutdownListener(listener);
      await Promise.all(exits);
      listener.close();
      closeSync(lock.release());
    })();
    return closing;
  }

  try {
    await Promise.all(ready);
  } catch (error) {
    await close();
    throw MountatError.wrap('internal', 'start the hook server', error);
  }
  const stopped = Promise.all(exits).then(async () => {
    await closing;
    if (failure !== undefined) throw MountatError.wrap('internal', 'hook server', failure);
  });
  return { socketPath, stopped, close };
}
