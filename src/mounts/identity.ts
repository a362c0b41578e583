// How the engine proves a mount is the one it made: the kernel's mount id, read with statx
// from the very fd fsmount/open_tree returned. The old 32-bit id (STATX_MNT_ID) can be reused
// once a mount is gone; where the kernel has STATX_MNT_ID_UNIQUE (6.8+) that id never is,
// so it is the one compared. The old id is kept as well: /proc/self/mountinfo speaks only it.
import { MountatError } from '../base/index.js';
import { constants as C, type Fd, type FdRef, statx } from '../linux/index.js';
import type { RootIdentity } from './generated/mount-record.js';
import { openTopmost } from './resolve.js';

export interface MountIdentity {
  /** The reusable id, as in /proc/self/mountinfo. */
  mountId: string;
  /** The never-reused id, or null on kernels without STATX_MNT_ID_UNIQUE. */
  uniqueMountId: string | null;
}

/** The root a record is of: device and inode (declared with the record: schemas/mount-record.schema.json). */
export type { RootIdentity } from './generated/mount-record.js';

export function mountIdentityOf(fd: FdRef): MountIdentity {
  const old = statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID);
  const unique = statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID_UNIQUE);
  return {
    mountId: old.mountId.toString(),
    uniqueMountId: unique.mask & C.STATX_MNT_ID_UNIQUE ? unique.mountId.toString() : null,
  };
}

/**
 * Whether the mount `fd` is on is the one recorded as `ours`, with a single statx: the unique id
 * when the record has one and the kernel gives it, otherwise the reusable one.
 */
export function isOurMount(fd: FdRef, ours: MountIdentity): boolean {
  if (ours.uniqueMountId !== null) {
    const unique = statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID_UNIQUE);
    if (unique.mask & C.STATX_MNT_ID_UNIQUE) return unique.mountId.toString() === ours.uniqueMountId;
  }
  return statx(fd, '', C.AT_EMPTY_PATH, C.STATX_MNT_ID).mountId.toString() === ours.mountId;
}

/** Whether `found` is the mount recorded as `ours`: by the unique id when both have one. */
export function sameMount(ours: MountIdentity, found: MountIdentity): boolean {
  if (ours.uniqueMountId !== null && found.uniqueMountId !== null) return ours.uniqueMountId === found.uniqueMountId;
  return ours.mountId === found.mountId;
}

export function rootIdentityOf(rootFd: FdRef): RootIdentity {
  const st = statx(rootFd, '', C.AT_EMPTY_PATH, C.STATX_INO | C.STATX_TYPE);
  if ((st.mode & C.S_IFMT) !== C.S_IFDIR) throw new MountatError('invalid-input', 'the root is not a directory');
  return { dev: `${st.devMajor}:${st.devMinor}`, ino: st.ino.toString() };
}

/**
 * The topmost mount at `path` beneath the root, as an O_PATH fd, if it is the mount recorded as
 * `ours`; undefined if nothing is there or it is another mount.
 */
export function openOurMountAt(rootFd: FdRef, path: string, ours: MountIdentity): Fd | undefined {
  let fd: Fd;
  try {
    fd = openTopmost(rootFd, path);
  } catch {
    return undefined;
  }
  try {
    if (isOurMount(fd, ours)) return fd;
  } catch (error) {
    fd.close();
    throw error;
  }
  fd.close();
  return undefined;
}
