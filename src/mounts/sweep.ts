// Removing mounts a crashed process left below a directory (the runner's build directory at
// start-up). There is no record to prove them ours, so the caller says which mounts it could
// have made (`owns`, its policy); this file only finds, checks and unmounts them:
//
// - Found by the directory's fd, not by a path string: the kernel's table lists mount points as
//   canonical paths, so the prefix is the fd's own path as the kernel resolves it
//   (/proc/thread-self/fd/N), the same form mountinfo uses (both relative to this process's root).
//   A directory configured through a symlink is then swept like any other. Each mount is then
//   reached again beneath the fd without following any symlink, and must still carry the id the
//   table gave: a path string alone proves nothing.
// - A mount inside one the caller owns goes with it (stacked on it, or a proc cover under a
//   proc): the kernel detaches a subtree with its parent under MNT_DETACH anyway, so it is
//   unmounted first and reported as swept, not left alone.
// - Everything else is left alone and returned, for the caller to log.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { constants as C, type Fd, isErrno, openat2, statx } from '../linux/index.js';
import { canonicalPathOf, readMountInfo, type MountInfoEntry } from './mountinfo.js';
import { unmountByFd } from './unmount.js';

export interface SweptMount {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** What `owns` is shown of a mount below the directory. */
export interface SweepCandidate {
  /** Relative to the directory, components joined by '/'. */
  relative: string;
  fsType: string;
  source: string;
  /**
   * The device ("major:minor") and inode of the mount's root, as reached beneath the directory
   * (a bind's are its source's); undefined when it cannot be reached as that mount (covered by
   * another, or moved). Looked up only when asked.
   */
  root(): { dev: string; ino: bigint } | undefined;
}

export type SweepRule = (candidate: SweepCandidate) => boolean;

export interface SweepResult {
  swept: SweptMount[];
  /** Mounts below the directory that `owns` did not claim. */
  leftAlone: SweptMount[];
  /** What could not be swept: "<mount point>: <why>", the why kept as the cause. */
  problems: MountatError[];
}

const BENEATH = C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS;

/** Mounts strictly below `dirPath` (canonical), deepest first (a mount on top of another goes first too). */
export function mountsBelow(table: MountInfoEntry[], dirPath: string): MountInfoEntry[] {
  const prefix = dirPath.endsWith('/') ? dirPath : `${dirPath}/`;
  const below = table.map((entry, order) => ({ entry, order })).filter(({ entry }) => entry.mountPoint.startsWith(prefix));
  // Deeper paths first; at the same path, later (stacked) mounts first.
  below.sort((a, b) => b.entry.mountPoint.split('/').length - a.entry.mountPoint.split('/').length || b.order - a.order);
  return below.map(({ entry }) => entry);
}

/** `dir` is borrowed: it stays open. */
export function sweepBelow(dir: Fd, owns: SweepRule): SweepResult {
  const result: SweepResult = { swept: [], leftAlone: [], problems: [] };
  const dirPath = canonicalPathOf(dir);
  if (dirPath.endsWith(' (deleted)')) {
    result.problems.push(new MountatError('precondition', `${dirPath}: the directory was removed; nothing below it can be reached`));
    return result;
  }
  const prefix = dirPath.endsWith('/') ? dirPath : `${dirPath}/`;
  const below = mountsBelow(readMountInfo(), dirPath);
  // Decide first, parents before children, with nothing unmounted yet (so a covered mount is
  // still judged by what the table says of it).
  const owned = new Set<string>();
  for (const entry of [...below].reverse()) {
    const relative = entry.mountPoint.slice(prefix.length);
    if (owned.has(entry.parentId) || owns({ relative, fsType: entry.fsType, source: entry.source, root: () => rootOf(dir, relative, entry.id) }))
      owned.add(entry.id);
  }
  for (const entry of below) {
    const mount = { mountPoint: entry.mountPoint, fsType: entry.fsType, source: entry.source };
    if (!owned.has(entry.id)) {
      result.leftAlone.push(mount);
      continue;
    }
    const relative = entry.mountPoint.slice(prefix.length);
    let fd: Fd;
    try {
      fd = openat2(dir, relative, { flags: C.O_PATH | C.O_CLOEXEC, resolve: BENEATH }, relative);
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) result.problems.push(sweepFailure(entry, error));
      continue;
    }
    try {
      if (statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID).mountId.toString() !== entry.id) continue; // changed since the table was read
      unmountByFd(fd, dir, relative);
      result.swept.push(mount);
    } catch (error) {
      result.problems.push(sweepFailure(entry, error));
    } finally {
      fd.close();
    }
  }
  return result;
}

function sweepFailure(entry: MountInfoEntry, error: unknown): MountatError {
  return new MountatError(kindOf(error), `${entry.mountPoint}: ${messageOf(error)}`, { cause: error });
}

function rootOf(dir: Fd, relative: string, id: string): { dev: string; ino: bigint } | undefined {
  let fd: Fd;
  try {
    fd = openat2(dir, relative, { flags: C.O_PATH | C.O_CLOEXEC, resolve: BENEATH }, relative);
  } catch {
    return undefined;
  }
  try {
    const stat = statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID | C.STATX_INO);
    return stat.mountId.toString() === id ? { dev: `${stat.devMajor}:${stat.devMinor}`, ino: stat.ino } : undefined;
  } finally {
    fd.close();
  }
}
