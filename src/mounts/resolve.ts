// Looking up targets beneath an untrusted root. Every lookup is openat2 with RESOLVE_IN_ROOT
// (".." and absolute symlinks cannot leave the root) and RESOLVE_NO_SYMLINKS (no symlink is
// followed at all, so a `proc -> /etc` planted by the action is refused, not clamped).
// Nothing here joins a host path: the root is only ever an fd.
import { constants as osConstants } from 'node:os';
import { constants as C, Fd, type FdRef, isErrno, mkdirat, openat2, statx, SyscallError, tryOpenat2, type Opened } from '../linux/index.js';
import { DEFAULTS } from './defaults.js';
import { MountError } from './errors.js';
import type { CreatedDir } from './generated/mount-record.js';
import { targetComponents } from './plan.js';

/** A directory attach created (declared with the record: schemas/mount-record.schema.json). */
export type { CreatedDir } from './generated/mount-record.js';

const ENOENT = osConstants.errno.ENOENT;
/** A one-component target, just found missing whole: no second lookup. */
const MISSING: Opened = { ok: false, errno: ENOENT };
const BENEATH = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS;
// No O_NOFOLLOW: with it a symlink as the last component is opened as itself (O_DIRECTORY then
// gives a puzzling ENOTDIR); without it RESOLVE_NO_SYMLINKS refuses it with ELOOP, as any other.
const DIR_PATH = C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC;

/**
 * Open whatever is at `path` now, following mounts on it (so the fd is the topmost mount's
 * root) but no symlink. Used at teardown to see what sits on a target.
 */
export function openTopmost(rootFd: FdRef, path: string): Fd {
  return openat2(rootFd, path, { flags: C.O_PATH | C.O_NOFOLLOW | C.O_CLOEXEC, resolve: BENEATH }, path);
}

/** Open the directory a target lives in (the root itself for a top-level target). */
export function openParent(rootFd: FdRef, target: string): { parent: Fd; name: string } {
  const parts = targetComponents(target);
  const name = parts.pop()!;
  const parentPath = parts.length === 0 ? '.' : parts.join('/');
  const parent = openat2(rootFd, parentPath, { flags: DIR_PATH, resolve: BENEATH }, parentPath === '.' ? '/' : parentPath);
  return { parent, name };
}

/**
 * Resolve a mountpoint, creating missing directories (and missing parents) one component at a
 * time with mkdirat relative to the parent fd just resolved. Each directory created is pushed
 * onto `created` at once, so a failure half-way still lets the caller remove them. A missing
 * component is the expected case here, so lookups report errnos rather than throw.
 */
export function resolveMountpoint(rootFd: FdRef, target: string, created: CreatedDir[], beforeCreate: () => void = () => {}): Fd {
  const how = { flags: DIR_PATH, resolve: BENEATH | C.RESOLVE_NO_XDEV };
  const found = tryOpenat2(rootFd, target, how);
  if (found.ok) return found.fd;
  if (found.errno !== ENOENT) throw new MountError(target, 'resolve', new SyscallError('openat2', found.errno, { path: target }));
  const parts = targetComponents(target);
  let current: Fd | undefined;
  try {
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      const path = i === 0 ? name : parts.slice(0, i + 1).join('/');
      const base = current ?? rootFd;
      // A one-component target was just looked up whole: it is missing, go straight to mkdirat.
      let next: Opened = parts.length === 1 ? MISSING : tryOpenat2(base, name, how);
      if (!next.ok && next.errno === ENOENT) {
        // Announced before it exists, so that a record can name it should we die right after.
        const entry: CreatedDir = { path, ino: '' };
        created.push(entry);
        beforeCreate();
        try {
          mkdirat(base, name, DEFAULTS.mountpointMode, path);
        } catch (mkdirError) {
          created.pop();
          // Someone else created it in between: use theirs, but it is not ours to remove.
          if (!isErrno(mkdirError, 'EEXIST')) throw new MountError(path, 'create', mkdirError);
        }
        next = tryOpenat2(base, name, how);
        if (next.ok && created.at(-1) === entry) {
          try {
            entry.ino = statx(next.fd, '', C.AT_EMPTY_PATH, C.STATX_INO).ino.toString();
          } catch (error) {
            // Not yet `current`: the finally below would not close it.
            next.fd.close();
            throw error;
          }
        }
      }
      if (!next.ok) throw new MountError(path, 'resolve', new SyscallError('openat2', next.errno, { path }));
      current?.close();
      current = next.fd;
    }
    const result = current!;
    current = undefined;
    return result;
  } finally {
    current?.close();
  }
}
