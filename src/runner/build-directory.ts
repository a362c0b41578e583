// Every path in a RunRequest is relative to the build directory (or, for the working directory,
// to the input root). Each is resolved through fds with openat2: RESOLVE_BENEATH refuses `..`
// and absolute symlinks that would leave, RESOLVE_NO_SYMLINKS refuses symlinks altogether.
import { constants as C, type Fd, openat2, tryOpenat2, errnoName } from '../linux/index.js';
import { MountatError } from '../base/index.js';
import { invalidArgument } from './errors.js';

const STRICT = C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS;
const DIR = C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC;
// Not in Node's fs.constants under these names on every platform; Linux values (x86_64 and aarch64 alike).
const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_EXCL = 0o200;

const WHY: Record<string, string> = {
  ENOENT: 'does not exist',
  ELOOP: 'is or passes through a symlink',
  ENOTDIR: 'is not a directory',
  EEXIST: 'already exists',
  EACCES: 'permission denied',
  EROFS: 'is on a read-only filesystem',
};

/** `within`: what the path is relative to, which EXDEV says it leaves. */
function describe(field: string, value: string, errno: number, within = 'the build directory'): string {
  const code = errnoName(errno);
  const why = code === 'EXDEV' ? `leaves ${within}` : WHY[code];
  return `${field} ${JSON.stringify(value)} ${why ?? code} (${code})`;
}

/** Refuse what no lookup should even see: absolute paths, `..`, NUL, empty components. */
export function checkRelative(field: string, value: string, { allowEmpty = false } = {}): string {
  if (value === '' || value === '.') {
    if (allowEmpty) return '.';
    throw invalidArgument(`${field} is empty`);
  }
  if (value.includes('\0')) throw invalidArgument(`${field} contains a NUL byte`);
  if (value.startsWith('/')) throw invalidArgument(`${field} ${JSON.stringify(value)} is absolute; it must be relative`);
  const parts = value.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw invalidArgument(`${field} ${JSON.stringify(value)} contains ".."`);
  return parts.join('/') || '.';
}

/** What an action needs of the build directory: where it is, and the directory as it is now. */
export interface BuildDirectoryLocation {
  readonly path: string;
  current(): BuildDirectory;
}

function openCurrent(path: string): BuildDirectory {
  const result = tryOpenat2(C.AT_FDCWD, path, { flags: DIR, resolve: 0 });
  if (!result.ok) throw new MountatError('unavailable', `the build directory ${path} cannot be opened: ${errnoName(result.errno)}`);
  return new BuildDirectory(path, result.fd);
}

/**
 * The build directory by its path alone, holding no fd (an action worker thread's): one opened when
 * the thread starts would hold a mount made over the directory before that (bb_worker's), which
 * could then not be unmounted.
 */
export function buildDirectoryAt(path: string): BuildDirectoryLocation {
  return { path, current: () => openCurrent(path) };
}

export class BuildDirectory implements Disposable {
  constructor(
    readonly path: string,
    readonly fd: Fd,
  ) {}

  static open(path: string): BuildDirectory {
    return new BuildDirectory(path, openat2(C.AT_FDCWD, path, { flags: DIR, resolve: 0 }, path));
  }

  /**
   * The build directory as it is now, for one request (its owner closes it). bb_worker mounts its FUSE build
   * directory on the very path the runner is configured with, and possibly after the runner started: an fd opened
   * before that names the directory underneath, where nothing of the worker's appears (the worker pod test saw
   * NOT_FOUND so). One openat2 a request, and that one fd for all of the request's paths.
   */
  current(): BuildDirectory {
    return openCurrent(this.path);
  }

  [Symbol.dispose](): void {
    this.fd.close();
  }

  /** A directory beneath the build directory, by the request's relative path. */
  openDirectory(field: string, value: string): Fd {
    const path = checkRelative(field, value);
    const result = tryOpenat2(this.fd, path, { flags: DIR, resolve: STRICT });
    if (!result.ok) throw invalidArgument(describe(field, value, result.errno));
    return result.fd;
  }

  /** Whether a relative path exists beneath the build directory (CheckReadiness). */
  exists(field: string, value: string, options: { allowEmpty?: boolean } = {}): boolean {
    const path = checkRelative(field, value, options);
    const result = tryOpenat2(this.fd, path, { flags: C.O_PATH | C.O_CLOEXEC, resolve: STRICT });
    if (!result.ok) return false;
    result.fd.close();
    return true;
  }

  /** A new output file, created exclusively with mode 0666 (less the umask), as bb_runner does. */
  createFile(field: string, value: string): Fd {
    const path = checkRelative(field, value);
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    using parent = slash < 0 ? undefined : this.openDirectory(`${field}'s directory`, path.slice(0, slash));
    const result = tryOpenat2(parent ?? this.fd, name, { flags: O_WRONLY | O_CREAT | O_EXCL | C.O_CLOEXEC, mode: 0o666, resolve: STRICT });
    if (!result.ok) throw invalidArgument(describe(field, value, result.errno));
    return result.fd;
  }
}

/** The working directory beneath the input root (RESOLVE_IN_ROOT: as the chrooted action sees it). */
export function openWorkingDirectory(rootFd: Fd, value: string): Fd {
  const path = checkRelative('working_directory', value, { allowEmpty: true });
  const result = tryOpenat2(rootFd, path, { flags: DIR, resolve: C.RESOLVE_IN_ROOT | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS });
  if (!result.ok) throw invalidArgument(describe('working_directory', value, result.errno, 'the input root'));
  return result.fd;
}
