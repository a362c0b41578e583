// Covering a proc or sysfs just attached: each name of its list (covers.ts) is resolved beneath
// the mount's own fd (never through the root, whose content is the action's), and a cover is
// moved onto the O_PATH fd found, so nothing is looked up twice. The covers are submounts of the
// proc or sysfs: detaching it (MNT_DETACH) takes them with it, and where this namespace is copied
// into a less privileged user namespace the kernel locks them to it (they cannot be peeled off
// there).
//
// Cost matters (every action of a runner pays it): per cover present, one openat2, the cover's
// two or three calls, one move_mount, the two statx of mountIdentityOf, two close; a name
// absent here costs its one failed openat2; a masked cover made ahead (stock.ts) only the openat2,
// the move_mount and the closes on the action's way. No at-target check as for the mount itself: the
// entries of proc and sysfs are the kernel's and cannot be renamed or replaced, so what was
// resolved is where the cover lands.
import { constants as osConstants } from 'node:os';
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { constants as C, Fd, fsconfigCreate, fsmount, fsopen, mountSetattr, moveMountOntoFd, openTree, SyscallError, tryOpenat2 } from '../linux/index.js';
import { MountError } from './errors.js';
import type { Cover } from './generated/mount-record.js';
import { mountIdentityOf, type MountIdentity } from './identity.js';
import { COVER_ATTRIBUTES, COVERS, NULL_DEVICE, type CoveredKind, type CoverSpec } from './covers.js';

/** A cover over one of the entries of a proc or sysfs, as recorded (schemas/mount-record.schema.json). */
export type { Cover } from './generated/mount-record.js';

const ENOENT = osConstants.errno.ENOENT;
// Beneath the mount's root, nothing followed, nothing crossed: proc and sysfs have symlinks
// (proc's self and mounts, sysfs's class/*/* and bus/*/devices/*), and no component of a covered
// name is one; a name that became a symlink or a mount is refused (but see BENEATH_CROSSING).
const BENEATH = C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS | C.RESOLVE_NO_XDEV;
/**
 * In a bind of the runner's own /sys (attach.ts, where a new sysfs is refused), an entry may be a
 * mount point of that tree: its runtime's mask (runc and crun put a tmpfs on /sys/firmware). Those
 * submounts are the runtime's, made before any action ran: the cover goes on top of what is there.
 */
const BENEATH_CROSSING = BENEATH & ~C.RESOLVE_NO_XDEV;

function howFor(spec: CoverSpec, boundTree: boolean) {
  return { flags: C.O_PATH | C.O_CLOEXEC | (spec.directory ? C.O_DIRECTORY : 0), resolve: boundTree ? BENEATH_CROSSING : BENEATH };
}

/**
 * The detached cover for `spec`, to go onto `at` (the entry itself). MS_PRIVATE on the binds:
 * a clone of /dev/null is a peer of the host's /dev if that is shared, and a mount the action
 * made on the cover would then appear on the host's /dev/null.
 */
function makeCover(spec: CoverSpec, at: Fd, path: string): Fd {
  if (spec.how === 'readonly') {
    // A bind of the very entry resolved: no second lookup by name.
    const tree = openTree(at, '', C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC | C.AT_EMPTY_PATH, path);
    return withAttributes(tree, COVER_ATTRIBUTES.readonly, path);
  }
  return makeMaskedCover(spec, path);
}

/** A masked cover (`spec.how` "masked"): it does not depend on what it will cover, so it can be made ahead (stock.ts). */
export function makeMaskedCover(spec: CoverSpec, path: string): Fd {
  if (!spec.directory) {
    // The engine's own namespace's /dev/null, by its absolute path: trusted, as the host is.
    let tree: Fd;
    try {
      tree = openTree(C.AT_FDCWD, NULL_DEVICE, C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC, NULL_DEVICE);
    } catch (error) {
      // Named here: the cover's own path in the message would hide which file was missing.
      const code = error instanceof SyscallError ? error.code : messageOf(error);
      throw new MountatError(kindOf(error), `open_tree ${NULL_DEVICE}: ${code} (a masked file gets ${NULL_DEVICE} bound over it)`, { cause: error });
    }
    return withAttributes(tree, COVER_ATTRIBUTES.maskedFile, path);
  }
  // An empty tmpfs, read-only from birth. No "source" option: one fsconfig less per cover, at
  // the price of "none" as its source in mountinfo.
  using fsfd = fsopen('tmpfs');
  fsconfigCreate(fsfd, path);
  return fsmount(fsfd, COVER_ATTRIBUTES.maskedDirectory, path);
}

function withAttributes(tree: Fd, attributes: number, path: string): Fd {
  try {
    mountSetattr(tree, '', C.AT_EMPTY_PATH, { attrSet: attributes, propagation: C.MS_PRIVATE }, path);
    return tree;
  } catch (error) {
    tree.close();
    throw error;
  }
}

/** A masked cover made ahead, with the ids read from its own fd. */
export interface StockedCover {
  fd: Fd;
  identity: MountIdentity;
}

/** Where masked covers made ahead come from (stock.ts's MountStock). */
export interface CoverSource {
  takeCover(spec: CoverSpec): StockedCover | undefined;
}

/**
 * Cover the `kind` mounted at `target` (relative to the root) whose mount fd is `mount`, with
 * that kind's list. Throws a MountError naming the cover; covers made before it stay on the
 * mount, for the caller to take off with it. `boundTree`: `mount` is a recursive bind of this
 * namespace's own /sys, not a new instance. `stock`: masked covers made ahead, taken where it has one.
 */
export function coverMount(kind: CoveredKind, mount: Fd, target: string, boundTree = false, stock?: CoverSource): Cover[] {
  const covers: Cover[] = [];
  for (const spec of COVERS[kind]) {
    const path = `${target}/${spec.name}`;
    const qualifier = spec.how === 'readonly' ? 'read-only' : 'masked';
    const found = tryOpenat2(mount, spec.name, howFor(spec, boundTree));
    if (!found.ok) {
      if (found.errno === ENOENT) continue;
      throw new MountError(path, 'cover', new SyscallError('openat2', found.errno, { path }), qualifier);
    }
    using at = found.fd;
    try {
      const stocked = spec.how === 'masked' ? stock?.takeCover(spec) : undefined;
      using cover = stocked?.fd ?? makeCover(spec, at, path);
      moveMountOntoFd(cover, at, path);
      covers.push({ path, how: spec.how, ...(stocked?.identity ?? mountIdentityOf(cover)) });
    } catch (error) {
      throw new MountError(path, 'cover', error, qualifier);
    }
  }
  return covers;
}
