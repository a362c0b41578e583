// attach(): apply a plan to a root known only by its fd. One loop over the entries, one
// switch over the kinds. For each entry: resolve (creating missing directories) beneath the
// root, make a detached mount, move it onto the resolved fd, and read back its identity from
// the mount's own fd. On any failure everything done so far is undone in reverse.
import { messageOf, MountatError } from '../base/index.js';
import {
  constants as C,
  Fd,
  type FdRef,
  fsconfigCreate,
  fsconfigSetFd,
  fsconfigSetFlag,
  fsconfigSetString,
  fsmount,
  fsopen,
  mountSetattr,
  moveMountOntoFd,
  openTree,
  statx,
  isErrno,
  listmount,
  userNamespaceOf,
} from '../linux/index.js';
import type { Attributes } from './defaults.js';
import { coverMount, type Cover } from './cover.js';
import type { CoveredKind } from './covers.js';
import type { AttachedMount, MountRecord } from './generated/mount-record.js';
import { AttachError, MountError } from './errors.js';
import { detach } from './detach.js';
import { removeCreatedDirs } from './dirs.js';
import { mountIdentityOf, openOurMountAt, rootIdentityOf, type MountIdentity } from './identity.js';
import type { FsOption, Plan, PlannedMount } from './plan.js';
import { resolveMountpoint, type CreatedDir } from './resolve.js';
import type { MountStock, StockedMount } from './stock.js';
import { unmountByFd, unmountMethod } from './unmount.js';

// The record's pieces are declared by schemas/mount-record.schema.json (what another process
// reads back is checked against it), and their types generated from it.
export type { AttachedMount } from './generated/mount-record.js';

/**
 * What attach did: enough for detach, in this process or another (it is plain JSON). A record
 * line is this, plus what the caller adds to every line (the runner's `inputRoot`).
 */
export type Attachment = Omit<MountRecord, 'inputRoot'>;

function attributeFlags(attributes: Attributes): number {
  let flags = 0;
  if (attributes.readOnly) flags |= C.MOUNT_ATTR_RDONLY;
  if (attributes.nosuid) flags |= C.MOUNT_ATTR_NOSUID;
  if (attributes.nodev) flags |= C.MOUNT_ATTR_NODEV;
  if (attributes.noexec) flags |= C.MOUNT_ATTR_NOEXEC;
  if (attributes.nosymfollow) flags |= C.MOUNT_ATTR_NOSYMFOLLOW;
  if (attributes.nodiratime) flags |= C.MOUNT_ATTR_NODIRATIME;
  switch (attributes.atime) {
    case 'relatime':
      return flags | C.MOUNT_ATTR_RELATIME;
    case 'noatime':
      return flags | C.MOUNT_ATTR_NOATIME;
    case 'strictatime':
      return flags | C.MOUNT_ATTR_STRICTATIME;
  }
}

export interface AttachOptions {
  /**
   * A PID namespace fd (/proc/PID/ns/pid) for every proc in the plan: proc then shows that
   * namespace's processes although this process is outside it (fsconfig "pidns"; newer kernels).
   */
  procPidns?: FdRef | undefined;
  /**
   * Called with a snapshot of what is attached so far before each directory is created, before a
   * mount is made while an earlier one is not in a snapshot yet, and after the last mount (see
   * attach()): a caller that persists it (the runner's record) can then be SIGKILLed at any point
   * and a later process still knows what to undo (a mount made after the last snapshot is in none:
   * the runner's start-up sweep is for that).
   */
  onProgress?: ((snapshot: Attachment) => void) | undefined;
  /**
   * The root is a detached copy (detached-copy.ts): a failure is not rolled back here. Its mounts
   * cannot be unmounted one by one from outside a namespace (the kernel refuses), and all of them
   * go when the copy's last fd is closed; the directories made for them stay, named in the
   * progress snapshots, for the caller to remove after that.
   */
  detachedCopy?: boolean | undefined;
  /**
   * Mounts made ahead (stock.ts): a sysfs entry's, covers and all, and proc's masked covers are
   * taken from it where it has them, instead of made here; the rest is as without it.
   */
  stock?: MountStock | undefined;
}

/** A new proc, sysfs or tmpfs instance, still detached. */
function newFilesystem(fsType: 'proc' | 'sysfs' | 'tmpfs', options: FsOption[], attributes: Attributes, where: string, pidns?: FdRef): Fd {
  using fsfd = fsopen(fsType);
  // Without a source the mount shows as "none" in mountinfo; name it like runtimes do.
  fsconfigSetString(fsfd, 'source', fsType, where);
  if (fsType === 'proc' && pidns !== undefined) fsconfigSetFd(fsfd, 'pidns', pidns, where);
  for (const option of options) {
    if ('flag' in option) fsconfigSetFlag(fsfd, option.key, where);
    else fsconfigSetString(fsfd, option.key, option.value, where);
  }
  fsconfigCreate(fsfd, where);
  return fsmount(fsfd, attributeFlags(attributes), where);
}

/** A detached copy of the bind source's tree, with the plan's attributes and private propagation. */
function cloneTree(entry: Extract<PlannedMount, { kind: 'bind' }>, where: string): Fd {
  const recursive = entry.recursive ? C.AT_RECURSIVE : 0;
  const flags = C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC | recursive;
  const tree =
    'fd' in entry.source
      ? openTree(entry.source.fd, '', flags | C.AT_EMPTY_PATH, `fd ${entry.source.fd.fd}`)
      : openTree(C.AT_FDCWD, entry.source.path, flags, entry.source.path);
  try {
    const st = statx(tree, '', C.AT_EMPTY_PATH, C.STATX_TYPE, where);
    if ((st.mode & C.S_IFMT) !== C.S_IFDIR) throw new MountatError('invalid-input', 'bind source is not a directory');
    // MS_PRIVATE: mounts the action makes inside the bind must not propagate back to the host
    // source. attr_clr carries the atime mask because atime is a mode, not a flag.
    mountSetattr(
      tree,
      '',
      C.AT_EMPTY_PATH | recursive,
      {
        attrSet: attributeFlags(entry.attributes),
        attrClr: C.MOUNT_ATTR__ATIME,
        propagation: C.MS_PRIVATE,
      },
      where,
    );
    return tree;
  } catch (error) {
    tree.close();
    throw error;
  }
}

/**
 * Where a user namespace that is not the host's does not own the network namespace (a container
 * with the host's network, or a runner that gives actions none of their own), the kernel refuses a
 * new sysfs: the container's own /sys, bound recursively, stands in, as runc and crun do. Read-only
 * as the plan asks (the default), covered as a new one would be.
 */
function sysfsOrBind(entry: Extract<PlannedMount, { kind: 'sysfs' }>, options: AttachOptions): Made {
  try {
    return { fd: newFilesystem('sysfs', entry.options, entry.attributes, entry.target, options.procPidns), boundTree: false };
  } catch (error) {
    if (!isErrno(error, 'EPERM') || userNamespaceOf().initial) throw error;
    const tree = cloneTree({ kind: 'bind', target: entry.target, source: { path: '/sys' }, recursive: true, attributes: entry.attributes }, entry.target);
    return { fd: tree, boundTree: true };
  }
}

/** A detached mount, and whether it is a recursive bind of this namespace's /sys standing in for a new sysfs. */
interface Made {
  fd: Fd;
  boundTree: boolean;
}

/**
 * In a user namespace that is not the host's, the kernel mounts a new proc only where one is fully
 * visible in this mount namespace (mount_too_revealing): masks over /proc made from a more
 * privileged user namespace (locked) stop it. A runtime's own masks, made inside the container's
 * user namespace (runc, crun, podman with a uid map), do not: measured in test/userns-runner.test.ts.
 */
function procOrExplain(entry: Extract<PlannedMount, { kind: 'proc' }>, options: AttachOptions): Fd {
  try {
    return newFilesystem('proc', entry.options, entry.attributes, entry.target, options.procPidns);
  } catch (error) {
    if (!isErrno(error, 'EPERM') || userNamespaceOf().initial) throw error;
    throw MountatError.wrap(
      'not-permitted',
      'proc is refused in this user namespace: masks over /proc made outside it leave no fully visible proc here; run it with an unmasked /proc (podman --security-opt unmask=ALL, Kubernetes securityContext.procMount: Unmasked)',
      error,
    );
  }
}

function makeMount(entry: PlannedMount, options: AttachOptions): Made {
  switch (entry.kind) {
    case 'proc':
      return { fd: procOrExplain(entry, options), boundTree: false };
    case 'sysfs':
      return sysfsOrBind(entry, options);
    case 'tmpfs':
      return { fd: newFilesystem(entry.kind, entry.options, entry.attributes, entry.target, options.procPidns), boundTree: false };
    case 'bind':
      return { fd: cloneTree(entry, entry.target), boundTree: false };
    default: {
      const never: never = entry;
      throw new MountatError('internal', `unknown mount kind in ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Attach one entry. The mount goes into `mounts` the moment it is attached, so that whatever fails
 * after (the at-target check, a cover) leaves it where rollback finds and undoes it.
 */
function attachOne(
  rootFd: FdRef,
  entry: PlannedMount,
  created: CreatedDir[],
  options: AttachOptions,
  progress: { beforeCreate: () => void; beforeMount: () => void },
  mounts: AttachedMount[],
): void {
  using target = resolveMountpoint(rootFd, entry.target, created, progress.beforeCreate);
  progress.beforeMount();
  const stocked: StockedMount | undefined = options.stock?.takeMount(entry);
  let made: Made;
  try {
    made = stocked ? { fd: stocked.fd, boundTree: false } : makeMount(entry, options);
  } catch (error) {
    throw error instanceof MountError ? error : new MountError(entry.target, `mount ${entry.kind} on`, error);
  }
  const mount = made.fd;
  using _mount = mount;
  // The id is read from our own mount fd, not by looking the target up again: this is the proof
  // that what detach later finds at the target is the mount made here. Read before move_mount
  // (a mount keeps its ids when it is moved): a read that fails then leaves nothing attached.
  // One made ahead had its ids read from its fd then.
  let identity: MountIdentity;
  try {
    identity = stocked?.identity ?? mountIdentityOf(mount);
  } catch (error) {
    throw new MountError(entry.target, `read the mount id of ${entry.kind} for`, error);
  }
  try {
    moveMountOntoFd(mount, target, entry.target);
  } catch (error) {
    throw new MountError(entry.target, `attach ${entry.kind} to`, error);
  }
  const attached: AttachedMount = { target: entry.target, kind: entry.kind, ...identity, createdDirs: created };
  mounts.push(attached);
  // The mount went onto the directory we resolved, wherever it is now. If something renamed that
  // directory meanwhile (a race on the root), the mount is not at the target, where detach will
  // look for it: undo it through our own fd and refuse, rather than leave it elsewhere.
  if (!mountIsAtTarget(rootFd, entry.target, identity)) {
    // Only by fd: the fallback unmounts by name, and the name is exactly what can no longer be trusted.
    if (unmountMethod() !== 'proc-fd') {
      throw new MountError(
        entry.target,
        `attach ${entry.kind} to`,
        new MountatError(
          'precondition',
          'the target directory was moved while it was being mounted, and without /proc the mount cannot be undone by fd; it stays on the moved directory inside the root',
        ),
      );
    }
    unmountByFd(mount, rootFd, entry.target);
    throw new MountError(
      entry.target,
      `attach ${entry.kind} to`,
      new MountatError('precondition', 'the target directory was moved while it was being mounted; mount undone'),
    );
  }
  // A recursive clone brings its source's submounts along: recorded as ours, since detach
  // proves everything beneath a mount is recorded before it unmounts it (detach.ts). Not on a
  // detached copy: listmount sees no detached tree, and no detach ever unmounts from one.
  if ((made.boundTree || (entry.kind === 'bind' && entry.recursive)) && identity.uniqueMountId !== null && !options.detachedCopy) {
    const cloned = clonedBeneath(identity.uniqueMountId, entry.target);
    if (cloned.length > 0) attached.cloned = cloned;
  }
  if ((entry.kind === 'proc' || entry.kind === 'sysfs') && entry.hardened)
    attached.covers = stocked?.covers ?? coverOrUndo(rootFd, entry.kind, made, entry.target, identity, options.stock);
}

/**
 * A sysfs entry's mount made ahead of any action (stock.ts): a new instance, its covers on it while
 * it is still detached, and its ids. Undefined where only a bind of this namespace's /sys can
 * stand in (a user namespace that does not own the network namespace): its submounts are read
 * when it is attached, beside the covers, and it is made then.
 */
export function makeAhead(entry: Extract<PlannedMount, { kind: 'sysfs' }>): StockedMount | undefined {
  const made = sysfsOrBind(entry, {});
  if (made.boundTree) {
    made.fd.close();
    return undefined;
  }
  try {
    const identity = mountIdentityOf(made.fd);
    const covers = entry.hardened ? coverMount('sysfs', made.fd, entry.target) : undefined;
    return { fd: made.fd, identity, covers };
  } catch (error) {
    made.fd.close();
    throw error;
  }
}

/** The unique ids of every mount beneath a clone just attached; none where listmount is missing. */
function clonedBeneath(uniqueMountId: string, where: string): string[] {
  try {
    return listmount(BigInt(uniqueMountId), where).map(String);
  } catch (error) {
    // Without listmount nothing beneath is proven at detach either: the clone goes whole, as before.
    if (isErrno(error, 'ENOSYS', 'EPERM', 'EACCES')) return [];
    throw new MountError(where, 'list the submounts of', error);
  }
}

/**
 * Cover a proc or sysfs just proven to be at its target. If a cover fails, the mount comes off
 * again with whatever covers were made (they are its submounts: one lazy unmount takes them all),
 * through its own fd; the caller then removes the directories created for it.
 */
function coverOrUndo(rootFd: FdRef, kind: CoveredKind, made: Made, target: string, identity: MountIdentity, stock?: MountStock): Cover[] {
  const mount = made.fd;
  try {
    return coverMount(kind, mount, target, made.boundTree, stock);
  } catch (error) {
    let undoFailure: unknown;
    try {
      // The fallback unmounts by name, looked up afresh: only once our mount is seen there again.
      if (unmountMethod() !== 'proc-fd' && !mountIsAtTarget(rootFd, target, identity))
        undoFailure = new MountatError('precondition', 'it is no longer at its target, and without /proc it cannot be taken off by fd');
      else unmountByFd(mount, rootFd, target);
    } catch (undoError) {
      undoFailure = undoError;
    }
    if (undoFailure !== undefined) {
      const both = new AggregateError([error, undoFailure], `${messageOf(error)}; taking the ${kind} off again failed too: ${messageOf(undoFailure)}`);
      throw new MountError(target, `cover ${kind} on`, both);
    }
    throw error;
  }
}

function mountIsAtTarget(rootFd: FdRef, target: string, identity: MountIdentity): boolean {
  using fd = openOurMountAt(rootFd, target, identity);
  return fd !== undefined;
}

/** Mount every entry of `plan` beneath the root. All or nothing: a failure leaves the root as it was. */
export function attach(rootFd: FdRef, plan: Plan, options: AttachOptions = {}): Attachment {
  const attachment: Attachment = { version: 1, root: rootIdentityOf(rootFd), mounts: [] };
  // Not a deep clone (it cost more than the record write): a mount is not changed once in the list,
  // so copying the list will do; the pending directories are still being filled in, so they are copied.
  const snapshot = (pending: CreatedDir[]): Attachment => ({ ...attachment, mounts: [...attachment.mounts], pending: pending.map((dir) => ({ ...dir })) });
  // A snapshot goes out before each directory is created and after the last mount; one after
  // each other mount waits until just before the next step that makes something (the next
  // mkdirat, or the next mount where its directory was there), and that step's snapshot carries
  // it. So every snapshot names everything made before it, as one per step did, in about half the
  // writes (the runner's three entries: four instead of nine). A directory's inode is not written
  // on its own: until the next snapshot its entry says "about to be created", which detach
  // removes only while it is an empty directory.
  let unsaved = false;
  const save = (pending: CreatedDir[]) => {
    options.onProgress?.(snapshot(pending));
    unsaved = false;
  };
  for (const entry of plan.mounts) {
    const created: CreatedDir[] = [];
    const progress = {
      beforeCreate: () => save(created),
      beforeMount: () => {
        if (unsaved) save(created);
      },
    };
    try {
      attachOne(rootFd, entry, created, options, progress, attachment.mounts);
      unsaved = true;
    } catch (error) {
      throw new AttachError(error, options.detachedCopy ? [] : rollBack(rootFd, attachment, created));
    }
  }
  if (unsaved) {
    try {
      save([]);
    } catch (error) {
      throw new AttachError(error, options.detachedCopy ? [] : rollBack(rootFd, attachment, []));
    }
  }
  return attachment;
}

/** What the rollback could not undo, as errors; empty when it was whole. */
function rollBack(rootFd: FdRef, attachment: Attachment, createdForFailed: CreatedDir[]): unknown[] {
  const failures: unknown[] = [];
  // The failed entry's directories, unless its mount was attached: detach removes them after it.
  if (attachment.mounts.at(-1)?.createdDirs !== createdForFailed) removeCreatedDirs(rootFd, createdForFailed, { removed: [], kept: [] }, failures);
  try {
    detach(rootFd, attachment);
  } catch (error) {
    failures.push(error);
  }
  return failures;
}
