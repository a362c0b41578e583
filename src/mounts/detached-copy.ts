// A detached copy of a root: open_tree(OPEN_TREE_CLONE | AT_RECURSIVE) of it, with whatever is
// mounted beneath it, in no mount namespace at all. A plan attached to the copy (Linux 6.15+ takes
// mounts onto a detached tree) is seen only by a process that attaches the copy in a namespace of
// its own (the starter's init does: --root-copy), never by this process's namespace or its peers;
// and it all goes, with no unmount of ours, with that namespace, or when the last fd of a copy
// never attached is closed.
// The runner's built-in hook mounts this way (hooks.ts): nothing of an action's is ever mounted
// where the runner, the host or another action could see it, and its teardown is the copy's close
// and the directories made for the mounts. Those directories are the original's too (one
// filesystem): removing one from here (rmdir) while the copy lives detaches what the copy has
// mounted on it (the kernel's detach_mounts): the teardown removes them once the action has ended.
import {
  constants as C,
  fsconfigCreate,
  fsmount,
  fsopen,
  mkdirat,
  moveMountOntoFd,
  mountSetattr,
  openat2,
  openTree,
  type Fd,
  type FdRef,
} from '../linux/index.js';

let mountsOntoDetached: boolean | undefined;

/**
 * Whether this kernel attaches a mount onto a detached tree (Linux 6.15+; older ones refuse with
 * EINVAL): tried once, on two tmpfs instances that never enter any namespace.
 */
export function kernelMountsOntoDetachedTrees(): boolean {
  mountsOntoDetached ??= (() => {
    try {
      const tmpfs = () => {
        using fs = fsopen('tmpfs');
        fsconfigCreate(fs, 'a tmpfs for the probe');
        return fsmount(fs, 0, 'a tmpfs for the probe');
      };
      using tree = tmpfs();
      mkdirat(tree, 'd', 0o700, 'the probe directory');
      using target = openat2(tree, 'd', { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: C.RESOLVE_BENEATH });
      using mount = tmpfs();
      moveMountOntoFd(mount, target, 'the probe directory');
      return true;
    } catch {
      return false;
    }
  })();
  return mountsOntoDetached;
}

/**
 * The copy, made private recursively: without that a copy of a shared mount (systemd makes "/"
 * shared) is a peer of it, and a mount on the copy would propagate to the original's peers.
 * The caller owns the fd; closing it (Fd.closeAsync: the kernel's unmount of the tree waits for
 * RCU) takes everything attached to it along, once no namespace holds a clone of it.
 */
export function openDetachedCopy(root: FdRef): Fd {
  const copy = openTree(root, '', C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC | C.AT_RECURSIVE | C.AT_EMPTY_PATH, 'a detached copy of the root');
  try {
    mountSetattr(copy, '', C.AT_EMPTY_PATH | C.AT_RECURSIVE, { attrSet: 0, attrClr: 0, propagation: C.MS_PRIVATE }, 'the detached copy of the root');
    return copy;
  } catch (error) {
    copy.close();
    throw error;
  }
}
