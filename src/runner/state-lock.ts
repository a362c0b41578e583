// One runner per state directory. Its start-up recovery treats every record there as left by a
// dead runner; a second runner on the same directory would tear down the first one's actions
// in flight. So the directory is locked for the runner's life: flock(2) on `runner.lock` in it.
//
// Why a lock, and not a state directory per runner: the records must be found again by the
// runner that replaces a crashed one (a new process, often a new container with its own pid and
// hostname, on the same volume). Only a fixed directory, named in the config, links the two.
// Why flock, and not a pid file alone: the kernel drops the lock when the holder dies, however
// it dies (SIGKILL, OOM, a container stopped), so a crashed runner never blocks the next one,
// and no pid has to be trusted (pids are reused, and mean nothing across PID namespaces). The
// pid and host name written into the file are only there to name the holder in the error.
// The lock is taken on the file's inode, so it holds between containers sharing the volume.
import { ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MountatError } from '../base/index.js';
import { Fd, flock, isErrno, LOCK_EX, LOCK_NB } from '../linux/index.js';

const LOCK_FILE = 'runner.lock';

export interface StateLock {
  readonly path: string;
  /** Drop the lock (at shutdown, once every action is torn down). The file stays. */
  release(): void;
}

export function lockStateDirectory(directory: string): StateLock {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const path = join(directory, LOCK_FILE);
  // Node opens with O_CLOEXEC: the lock is not inherited by the starter or any action.
  const fd = new Fd(openSync(path, 'a+', 0o600));
  try {
    flock(fd, LOCK_EX | LOCK_NB, path);
  } catch (error) {
    fd.close();
    if (!isErrno(error, 'EAGAIN', 'EWOULDBLOCK')) throw error;
    // A precondition: the config is fine, but another runner holds the directory.
    throw new MountatError(
      'precondition',
      `state directory ${directory} is in use by another runner (${holderOf(path)}, holding ${path}): give each runner its own stateDirectory`,
    );
  }
  ftruncateSync(fd.fd, 0);
  writeSync(fd.fd, `pid ${process.pid} on ${hostname()}\n`);
  return {
    path,
    release() {
      fd.close();
    },
  };
}

function holderOf(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim() || 'pid not written yet';
  } catch {
    return 'pid unknown';
  }
}
