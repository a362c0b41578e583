// The one host path the engine is given: the root's. It is opened once, as an O_PATH directory
// fd, and everything beneath it is then resolved from that fd (resolve.ts), never by path.
import { constants as C, type Fd, openat2 } from '../linux/index.js';
import { MountError } from './errors.js';

/**
 * Open the directory at `path` as the root to mount beneath. The caller owns the fd (`using`)
 * and keeps it open until what was mounted beneath it is torn down. The path is the caller's,
 * trusted as the host is: only what lies beneath the root is resolved with care.
 */
export function openRoot(path: string): Fd {
  try {
    return openat2(C.AT_FDCWD, path, { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: 0 }, path);
  } catch (error) {
    throw new MountError(path, 'open root', error);
  }
}
