// Removing the mountpoint directories the engine created, and only those: each is found
// again beneath the root, its inode compared with the one recorded, and removed only if empty.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { constants as C, type Fd, type FdRef, isErrno, printable, statx, unlinkat } from '../linux/index.js';
import { openParent, type CreatedDir } from './resolve.js';

export interface DirRemoval {
  removed: string[];
  /** Kept, with why: not empty, replaced by something else, already gone. */
  kept: Array<{ path: string; reason: string }>;
}

/** A directory that could not be removed: "remove `path`: <why>", the why kept as the cause. */
function removalFailure(path: string, error: unknown): MountatError {
  return new MountatError(kindOf(error), `remove \`${printable(path)}\`: ${messageOf(error)}`, { cause: error });
}

/** Remove what is ours of `dirs`, saying in `into` what went and what stayed; each failure is pushed to `failures`. */
export function removeCreatedDirs(rootFd: FdRef, dirs: readonly CreatedDir[], into: DirRemoval, failures: unknown[]): void {
  // Innermost first: a created parent can only go once its created child has.
  for (const dir of [...dirs].reverse()) {
    // A directory straight beneath the root needs no lookup of its parent: it is the root fd
    // (borrowed); any other parent is opened here, and closed here.
    let owned: Fd | undefined;
    let opened: { parent: FdRef; name: string };
    try {
      if (dir.path.includes('/')) {
        const found = openParent(rootFd, dir.path);
        owned = found.parent;
        opened = found;
      } else opened = { parent: rootFd, name: dir.path };
    } catch (error) {
      if (isErrno(error, 'ENOENT')) into.kept.push({ path: dir.path, reason: 'already gone' });
      else failures.push(removalFailure(dir.path, error));
      continue;
    }
    const parent = opened.parent;
    try {
      const st = statx(parent, opened.name, C.AT_SYMLINK_NOFOLLOW, C.STATX_INO | C.STATX_TYPE, dir.path);
      // An entry without an inode was recorded just before mkdirat: nobody else writes to the root
      // while the engine sets up, so an empty directory there is the one it made (rmdir refuses
      // any other).
      if ((st.mode & C.S_IFMT) !== C.S_IFDIR || (dir.ino !== '' && st.ino.toString() !== dir.ino)) {
        into.kept.push({ path: dir.path, reason: 'replaced by something the engine did not create' });
        continue;
      }
      unlinkat(parent, opened.name, C.AT_REMOVEDIR, dir.path);
      into.removed.push(dir.path);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) into.kept.push({ path: dir.path, reason: 'already gone' });
      else if (isErrno(error, 'ENOTEMPTY', 'EEXIST')) into.kept.push({ path: dir.path, reason: 'not empty' });
      else failures.push(removalFailure(dir.path, error));
    } finally {
      owned?.close();
    }
  }
}
