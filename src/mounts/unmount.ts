// Linux has no unmount-at-fd. Two safe ways to unmount exactly the mount an fd refers to:
//
// 1. umount2("/proc/thread-self/fd/N", MNT_DETACH). The kernel follows the magic link to the
//    fd's own (mount, dentry) pair, so no path beneath the untrusted root is looked up again.
//    UMOUNT_NOFOLLOW must not be passed: it would refuse to follow that very magic link (EINVAL).
//    "thread-self" rather than "self": koffi calls run on the main thread, whose fd table it is,
//    and it stays right should this ever run on another thread.
// 2. Without /proc in this namespace: fchdir to the target's parent fd and
//    umount2(name, UMOUNT_NOFOLLOW | MNT_DETACH). The working directory is process-wide, so the
//    change and its undo happen in one synchronous stretch with nothing awaited in between: in
//    Node no other JavaScript can run there, and libuv's threads do no path lookups for us.
//    The name is looked up afresh, so the caller checks the identity of what sits there first.
//
// MNT_DETACH throughout: an action's leftover process with its cwd in /tmp must not make
// teardown fail with EBUSY; the mount leaves the tree at once and is freed when unused.
import { constants as C, type Fd, type FdRef, fchdir, openat2, procFdAvailable, umount2 } from '../linux/index.js';
import { openParent } from './resolve.js';

let useProcFd: boolean | undefined;

/** Which way unmount works here; decided once, overridable for tests of the fallback. */
export function unmountMethod(): 'proc-fd' | 'fchdir' {
  useProcFd ??= procFdAvailable();
  return useProcFd ? 'proc-fd' : 'fchdir';
}

export function setUnmountMethodForTesting(method: 'proc-fd' | 'fchdir' | undefined): void {
  useProcFd = method === undefined ? undefined : method === 'proc-fd';
}

/**
 * Unmount the mount whose root `mountFd` is; it sits at `target` beneath the root, which the
 * fallback (that cannot name an fd) looks up again from the parent directory.
 */
export function unmountByFd(mountFd: Fd, root: FdRef, target: string): void {
  const where = target;
  if (unmountMethod() === 'proc-fd') {
    umount2(`/proc/thread-self/fd/${mountFd.fd}`, C.MNT_DETACH, where);
    return;
  }
  const opened = openParent(root, target);
  using parent = opened.parent;
  const name = opened.name;
  using cwd = openat2(C.AT_FDCWD, '.', { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: 0 }, '.');
  fchdir(parent, where);
  try {
    umount2(name, C.UMOUNT_NOFOLLOW | C.MNT_DETACH, where);
  } finally {
    fchdir(cwd, '.');
  }
}
