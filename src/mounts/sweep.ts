// Removing mounts a crashed process left below a directory (the runner's build directory at
// start-up). There is no record to prove them ours, so the proof is narrower: a mount point
// strictly below the directory, as the kernel's table lists it, reached again beneath the
// directory's fd without following any symlink, and still carrying the id the table gave.
import { constants as C, type Fd, isErrno, openat2, statx } from '../linux/index.js';
import { readMountInfo, type MountInfoEntry } from './mountinfo.js';
import { unmountByFd } from './unmount.js';

export interface SweptMount {
  mountPoint: string;
  fsType: string;
  source: string;
}

export interface SweepResult {
  swept: SweptMount[];
  problems: string[];
}

/** Mounts strictly below `dirPath`, deepest first (a mount on top of another goes first too). */
export function mountsBelow(table: MountInfoEntry[], dirPath: string): MountInfoEntry[] {
  const prefix = dirPath.endsWith('/') ? dirPath : `${dirPath}/`;
  const below = table.map((entry, order) => ({ entry, order })).filter(({ entry }) => entry.mountPoint.startsWith(prefix));
  // Deeper paths first; at the same path, later (stacked) mounts first.
  below.sort((a, b) => b.entry.mountPoint.split('/').length - a.entry.mountPoint.split('/').length || b.order - a.order);
  return below.map(({ entry }) => entry);
}

export function sweepBelow(dirFd: Fd | number, dirPath: string): SweepResult {
  const result: SweepResult = { swept: [], problems: [] };
  const prefix = dirPath.endsWith('/') ? dirPath : `${dirPath}/`;
  for (const entry of mountsBelow(readMountInfo(), dirPath)) {
    const relative = entry.mountPoint.slice(prefix.length);
    let fd: Fd;
    try {
      fd = openat2(dirFd, relative, { flags: C.O_PATH | C.O_CLOEXEC, resolve: C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS }, relative);
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) result.problems.push(`${entry.mountPoint}: ${(error as Error).message}`);
      continue;
    }
    try {
      if (statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID).mountId.toString() !== entry.id) continue; // changed since the table was read
      unmountByFd(fd, dirFd, relative);
      result.swept.push({ mountPoint: entry.mountPoint, fsType: entry.fsType, source: entry.source });
    } catch (error) {
      result.problems.push(`${entry.mountPoint}: ${(error as Error).message}`);
    } finally {
      fd.close();
    }
  }
  return result;
}
