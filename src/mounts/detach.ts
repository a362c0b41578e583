// detach(): undo an Attachment, in reverse order, touching only what the engine made.
// Each target is looked up again beneath the root; a mount there is unmounted only if its
// kernel id is the one recorded at attach. Then the directories the engine created are
// removed if they are still the same, empty directories. Running it twice is a no-op.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { constants as C, isErrno, listmount, moveMountOntoFd, printable, tryOpenat2, umount2Async, type Fd, type FdRef } from '../linux/index.js';
import type { AttachedMount, Attachment } from './attach.js';
import type { Cover } from './cover.js';
import { removeCreatedDirs, type DirRemoval } from './dirs.js';
import type { CreatedDir } from './resolve.js';
import { MountError } from './errors.js';
import { isOurMount, mountIdentityOf, openOurMountAt, rootIdentityOf, sameMount } from './identity.js';
import { canonicalPathOf, readMountInfo, stackAbove } from './mountinfo.js';
import { targetComponents } from './plan.js';
import { openTopmost } from './resolve.js';
import { unmountByFd, unmountMethod } from './unmount.js';

export interface DetachReport extends DirRemoval {
  /** Targets whose mount was unmounted (at the target, or where it had been moved to). */
  detached: string[];
  /** Mounts found moved inside the root (a parent renamed): "target -> where it was". */
  moved?: string[];
  /** Targets where our mount was no longer found (already unmounted, or its namespace is gone). */
  notMounted: string[];
  /** Mounts someone else stacked on ours, which went with it: "target: fstype source". */
  stacked: string[];
  /**
   * The recorded covers of each hardened proc or sysfs unmounted ("proc/sys", "sys/firmware", …).
   * They are submounts of a mount proven ours, so its one lazy umount2 took them along (those the
   * action had not removed itself): no lookup or unmount of their own. Absent when no mount with
   * covers was unmounted.
   */
  covers?: string[];
  /**
   * Targets unmounted in one umount2, all proven ours with everything beneath them
   * (detachTogether): the first named was unmounted, the others had been moved beneath it.
   * Absent when each went in an umount2 of its own.
   */
  together?: string[];
  /**
   * Our mounts left mounted because a mount that is not ours is beneath them (listmount): each
   * as "target (with covers a, b)". What is ours around it still went. Absent when none.
   */
  left?: string[];
  /** What could not be undone, one line each (the DetachError keeps them as errors). */
  problems: string[];
}

/**
 * Detach did all it could, and these failed: the report says what was done, the causes (one, or an
 * AggregateError of several) why the rest was not. The message is the first failure's; the kind too.
 */
export class DetachError extends MountatError {
  readonly report: DetachReport;
  /**
   * What is still there of the attachment: the mounts that failed or were left (with the covers
   * still on them) and the created directories not removed. The record of what is left.
   */
  remaining?: Attachment;

  constructor(report: DetachReport, failures: readonly unknown[]) {
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more)` : '';
    super(kindOf(failures[0]), `${messageOf(failures[0])}${more}`, { cause: failures.length === 1 ? failures[0] : new AggregateError(failures, '') });
    this.name = 'DetachError';
    this.report = report;
  }
}

type Outcome = 'detached' | 'not-mounted';

let listmountMissing = false;

/** Make detach act as on a kernel without listmount (true), or as on this one (false). */
export function setListmountMissingForTesting(missing: boolean): void {
  listmountMissing = missing;
}

/**
 * The unique ids beneath our mount that are not ours (not a recorded cover, not a submount its
 * clone brought along): listmount lists the whole subtree, stacked mounts included. Undefined
 * where that cannot be known (no listmount before Linux 6.8, no unique id): then everything
 * beneath is taken along, as before listmount.
 */
function foreignBeneath(mount: AttachedMount): Set<string> | undefined {
  if (listmountMissing || mount.uniqueMountId === null) return undefined;
  let beneath: bigint[];
  try {
    beneath = listmount(BigInt(mount.uniqueMountId), mount.target);
  } catch (error) {
    if (isErrno(error, 'ENOSYS')) {
      listmountMissing = true;
      return undefined;
    }
    // Refused (a security module's statfs hook, a user namespace that does not own this one):
    // not known, as without listmount, for this mount.
    if (isErrno(error, 'EPERM', 'EACCES')) return undefined;
    throw error;
  }
  const ours = new Set([...(mount.covers ?? []).map((cover) => cover.uniqueMountId), ...(mount.cloned ?? [])]);
  return new Set(beneath.map(String).filter((id) => !ours.has(id)));
}

/** Thrown for a mount left mounted around a foreign one; `covers` are those still on it. */
class LeftMounted extends MountatError {
  constructor(
    message: string,
    readonly covers: Cover[],
  ) {
    super('precondition', message);
  }
}

/**
 * Unmount our mount (proven ours, `fd` on it), unless something not ours is beneath it: a lazy
 * unmount would take that along. Then only what is ours and holds nothing foreign goes (each
 * cover on its own), and the mount stays, with the covers a foreign mount is beneath: "unmount
 * only what you can prove you made". Throws LeftMounted saying so.
 */
function unmountOurs(rootFd: FdRef, mount: AttachedMount, fd: Fd, where: string): void {
  const foreign = foreignBeneath(mount);
  if (foreign === undefined || foreign.size === 0) {
    unmountByFd(fd, rootFd, where);
    return;
  }
  const kept: Cover[] = [];
  for (const cover of mount.covers ?? []) {
    if (cover.uniqueMountId === null || listmount(BigInt(cover.uniqueMountId), cover.path).some((id) => foreign.has(id.toString()))) {
      kept.push(cover);
      continue;
    }
    using at = openOurMountAt(rootFd, cover.path, cover);
    // Not at its path (the action unmounted it inside a namespace that shares nothing with
    // this one cannot happen; someone in this namespace did): nothing of it to take off.
    if (at) unmountByFd(at, rootFd, cover.path);
  }
  const covers = kept.length > 0 ? ` with ${kept.length === 1 ? 'its cover' : 'its covers'} ${kept.map((cover) => printable(cover.path)).join(', ')}` : '';
  const count = foreign.size === 1 ? 'a mount that mountat did not make is' : `${foreign.size} mounts that mountat did not make are`;
  throw new LeftMounted(`left mounted${covers}: ${count} beneath it`, kept);
}

/**
 * Mounts stacked on ours (the action mounted over /proc, say) sit on top of our mount's root,
 * so the lookup finds theirs. They are children of ours: a lazy unmount of ours would take
 * them anyway. Peel them one by one, each re-identified before it goes, until ours is on top.
 */
function detachUnderStack(rootFd: FdRef, mount: AttachedMount, topId: string, report: DetachReport): Outcome {
  if (unmountMethod() !== 'proc-fd') return 'not-mounted'; // without /proc the parent chain is unknowable
  const stack = stackAbove(readMountInfo(), topId, mount.mountId);
  if (!stack || stack.length === 0) return 'not-mounted';
  for (const other of stack) {
    using top = openTopmost(rootFd, mount.target);
    if (mountIdentityOf(top).mountId !== other.id) throw new MountatError('precondition', 'the mounts on it changed during teardown');
    unmountByFd(top, rootFd, mount.target);
    report.stacked.push(printable(`${mount.target}: ${other.fsType} ${other.source}`));
  }
  using top = openTopmost(rootFd, mount.target);
  if (!sameMount(mount, mountIdentityOf(top))) throw new MountatError('precondition', 'after removing the mounts stacked on it, ours was not underneath');
  unmountOurs(rootFd, mount, top, mount.target);
  return 'detached';
}

/**
 * Our mount is not at its target: a parent directory may have been renamed since (the kernel
 * allows renaming a directory above a mount point). Find it by its id in the mount table; if it
 * is still beneath the root, reach it there (beneath the root fd, no symlinks), prove it ours by
 * the unique id, and unmount it through its fd.
 */
function detachMoved(rootFd: FdRef, mount: AttachedMount, report: DetachReport): boolean {
  // Only with never-reused ids: a reusable one could name another mount that now sits in the root.
  if (unmountMethod() !== 'proc-fd' || mount.uniqueMountId === null) return false;
  const entry = readMountInfo().find((candidate) => candidate.id === mount.mountId);
  if (!entry) return false;
  const rootPath = canonicalPathOf(rootFd);
  const prefix = rootPath.endsWith('/') ? rootPath : `${rootPath}/`;
  if (!entry.mountPoint.startsWith(prefix)) return false;
  const where = entry.mountPoint.slice(prefix.length);
  using fd = openOurMountAt(rootFd, where, mount);
  if (!fd) return false;
  unmountOurs(rootFd, mount, fd, where);
  (report.moved ??= []).push(printable(`${mount.target} -> ${where}`));
  return true;
}

function detachOne(rootFd: FdRef, mount: AttachedMount, report: DetachReport): Outcome {
  // A record may come from a file: its targets get the same checks as a plan's. (RESOLVE_IN_ROOT
  // would clamp "../x" to "x" and report it not mounted, hiding the corruption.)
  targetComponents(mount.target);
  let top: Fd;
  try {
    top = openTopmost(rootFd, mount.target);
  } catch (error) {
    // Gone, or replaced by a symlink: nothing of ours is there; it may have been moved.
    if (isErrno(error, 'ENOENT', 'ELOOP', 'ENOTDIR')) return detachMoved(rootFd, mount, report) ? 'detached' : 'not-mounted';
    throw error;
  }
  using _top = top;
  if (isOurMount(top, mount)) {
    unmountOurs(rootFd, mount, top, mount.target);
    return 'detached';
  }
  const outcome = detachUnderStack(rootFd, mount, mountIdentityOf(top).mountId, report);
  return outcome === 'detached' || !detachMoved(rootFd, mount, report) ? outcome : 'detached';
}

/**
 * Several mounts in one umount2. Each umount2 that takes a mount away ends in the kernel's
 * namespace_unlock, which waits for an RCU grace period (bench/RESULTS.md: the one sleep of a
 * teardown, 40-260 µs each); moving a mount waits for none. So where every mount is proven ours,
 * whole subtree included, the others are moved beneath one of them and one lazy umount2 of it
 * takes them all.
 *
 * Beneath, not on top: a mount stacked on the base's own root would be what the unmount by
 * /proc/thread-self/fd/N finds (the kernel goes to the topmost mount there), so they go onto
 * the root of one of the base's covers that is a directory (proc's `sys`), a submount of the
 * base, which the base's unmount takes with everything on it. A plan with no such cover (no
 * hardened proc or sysfs) keeps today's path.
 *
 * Proven: each is the topmost mount at its target with the recorded unique id, and listmount
 * (every mount beneath it, stacked ones included; the kernel walks the whole subtree in every
 * version merged) lists nothing but its recorded covers. Anything else (no listmount before
 * Linux 6.8, no unique ids, no /proc for the unmount, a mount stacked on ours or under it that is
 * not ours, a recursive bind that brought submounts of its source along) leaves every mount to
 * today's path, one umount2 each, which peels and names what was stacked. Nothing is changed
 * before the proof is complete. A move the kernel refuses (EINVAL where the root's mount is
 * shared: a mount cannot be moved off a shared parent) ends the merging; what was moved by then
 * goes in the one umount2, the rest by today's path.
 *
 * Moved in reverse detach order, so the first to be detached ends topmost: a process killed
 * between a move and the umount2 leaves them stacked on the cover, where detach, which reads the
 * record in that same order, finds each in turn by its id (detachMoved), or takes them with the
 * base.
 *
 * Returns the mounts it unmounted (empty when it did nothing).
 */
/** The mounts of a plan, proven ours and moved beneath the base: one umount2 of `base` away from gone. */
interface Merge {
  base: Fd;
  baseTarget: string;
  merged: AttachedMount[];
  /** Close every fd it holds, once the umount2 is done. */
  close: () => void;
}

function prepareTogether(rootFd: FdRef, mounts: readonly AttachedMount[]): Merge | undefined {
  if (listmountMissing || mounts.length < 2 || unmountMethod() !== 'proc-fd' || mounts.some((mount) => mount.uniqueMountId === null)) return undefined;
  const opened = new Map<AttachedMount, Fd>();
  let holder: Fd | undefined;
  const close = () => {
    holder?.close();
    for (const fd of opened.values()) fd.close();
  };
  try {
    for (const mount of mounts) {
      targetComponents(mount.target);
      const found = openOurMountAt(rootFd, mount.target, mount);
      if (!found) return void close();
      opened.set(mount, found);
      const foreign = foreignBeneath(mount);
      if (foreign === undefined || foreign.size > 0) return void close();
    }
    // The base: the first mount in the record (detach's last) with a cover that is a directory.
    let baseMount: AttachedMount | undefined;
    for (const mount of [...mounts].reverse()) {
      for (const cover of mount.covers ?? []) {
        holder = openCoverDirectory(rootFd, cover);
        if (holder) break;
      }
      if (holder) {
        baseMount = mount;
        break;
      }
    }
    if (!baseMount || !holder) return void close();
    const merged = [baseMount];
    for (const mount of [...mounts].reverse()) {
      if (mount === baseMount) continue;
      try {
        moveMountOntoFd(opened.get(mount)!, holder, mount.target);
      } catch {
        break;
      }
      merged.push(mount);
    }
    return { base: opened.get(baseMount)!, baseTarget: baseMount.target, merged, close };
  } catch {
    close();
    return undefined;
  }
}

/** detachTogether's end: the mounts it unmounted, or none if its one umount2 failed (`failed`). */
function mergedSet(merge: Merge | undefined, failed: boolean): Set<AttachedMount> {
  // Where the umount2 failed, what was moved beneath the base is still there: today's path finds
  // it (detachMoved) and says why.
  return new Set(merge && !failed ? merge.merged : []);
}

function detachTogether(rootFd: FdRef, mounts: readonly AttachedMount[]): Set<AttachedMount> {
  const merge = prepareTogether(rootFd, mounts);
  if (!merge) return mergedSet(merge, false);
  let failed = false;
  try {
    unmountByFd(merge.base, rootFd, merge.baseTarget);
  } catch {
    failed = true;
  } finally {
    merge.close();
  }
  return mergedSet(merge, failed);
}

/** detachTogether with its umount2 on a thread of libuv's pool (prepareTogether needs /proc: the fd's path). */
async function detachTogetherAsync(rootFd: FdRef, mounts: readonly AttachedMount[]): Promise<Set<AttachedMount>> {
  const merge = prepareTogether(rootFd, mounts);
  if (!merge) return mergedSet(merge, false);
  let failed = false;
  try {
    await umount2Async(`/proc/thread-self/fd/${merge.base.fd}`, C.MNT_DETACH, merge.baseTarget);
  } catch {
    failed = true;
  } finally {
    merge.close();
  }
  return mergedSet(merge, failed);
}

/** A cover that is a directory, at its path and proven ours, as an O_PATH fd; undefined otherwise. */
function openCoverDirectory(rootFd: FdRef, cover: Cover): Fd | undefined {
  if (cover.uniqueMountId === null) return undefined;
  const found = tryOpenat2(rootFd, cover.path, {
    flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC,
    resolve: C.RESOLVE_IN_ROOT | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS,
  });
  if (!found.ok) return undefined;
  try {
    if (isOurMount(found.fd, cover)) return found.fd;
  } catch {
    // not provable: not used
  }
  found.fd.close();
  return undefined;
}

/** Remove what `attachment` mounted and created beneath the root. Throws DetachError, after trying everything, if anything failed. */
export function detach(rootFd: FdRef, attachment: Attachment): DetachReport {
  checkRoot(rootFd, attachment);
  const order = [...attachment.mounts].reverse();
  return finishDetach(rootFd, attachment, order, detachTogether(rootFd, order));
}

/**
 * detach(), with the one umount2 of a plan proven ours (detachTogether: almost all of a
 * teardown's wait) awaited on a thread of libuv's pool instead of blocking the event loop. The
 * rest is detach's own synchronous work, and the same where the plan cannot be merged.
 */
export async function detachAsync(rootFd: FdRef, attachment: Attachment): Promise<DetachReport> {
  checkRoot(rootFd, attachment);
  const order = [...attachment.mounts].reverse();
  return finishDetach(rootFd, attachment, order, await detachTogetherAsync(rootFd, order));
}

/**
 * What is left of an attachment made on a detached copy of the root (detached-copy.ts) once the
 * copy has gone: its mounts went with it, and none of them was ever in this namespace, so there
 * is nothing to look up or unmount. The directories made for them are removed as detach removes
 * them (each only if it is still the one made, and empty).
 */
export function removeDirectoriesOfCopy(rootFd: FdRef, attachment: Attachment): DetachReport {
  checkRoot(rootFd, attachment);
  return finishDetach(rootFd, attachment, [...attachment.mounts].reverse(), new Set(), { mountsGone: true });
}

function checkRoot(rootFd: FdRef, attachment: Attachment): void {
  const root = rootIdentityOf(rootFd);
  if (root.dev !== attachment.root.dev || root.ino !== attachment.root.ino) {
    throw new MountatError(
      'invalid-input',
      `the record is for another root (device ${attachment.root.dev} inode ${attachment.root.ino}, this is ${root.dev} inode ${root.ino})`,
    );
  }
}

function finishDetach(
  rootFd: FdRef,
  attachment: Attachment,
  order: readonly AttachedMount[],
  together: Set<AttachedMount>,
  { mountsGone = false } = {},
): DetachReport {
  const report: DetachReport = { detached: [], notMounted: [], stacked: [], removed: [], kept: [], problems: [] };
  const failures: unknown[] = [];
  if (together.size > 0) report.together = [...together].map((mount) => mount.target);
  // What is still there, for the record on failure: attach order, as a record has it.
  const remaining: AttachedMount[] = [];
  let dirsLeft: CreatedDir[] = [];
  const stillThere = (dirs: readonly CreatedDir[]) =>
    dirs.filter((dir) => !report.removed.includes(dir.path) && !report.kept.some((kept) => kept.path === dir.path && kept.reason === 'already gone'));
  for (const mount of order) {
    let outcome: Outcome;
    try {
      outcome = mountsGone ? 'not-mounted' : together.has(mount) ? 'detached' : detachOne(rootFd, mount, report);
    } catch (error) {
      failures.push(new MountError(mount.target, `detach ${mount.kind} from`, error));
      if (error instanceof LeftMounted) {
        const covers = error.covers.length > 0 ? ` (with ${error.covers.map((cover) => printable(cover.path)).join(', ')})` : '';
        (report.left ??= []).push(`${printable(mount.target)}${covers}`);
        remaining.unshift({ ...mount, covers: error.covers });
      } else remaining.unshift(mount);
      continue;
    }
    (outcome === 'detached' ? report.detached : report.notMounted).push(mount.target);
    if (outcome === 'detached' && mount.covers?.length) (report.covers ??= []).push(...mount.covers.map((cover) => printable(cover.path)));
    removeCreatedDirs(rootFd, mount.createdDirs, report, failures);
    dirsLeft = [...stillThere(mount.createdDirs), ...dirsLeft];
  }
  // Directories created for a mount that was never made (a record written while attach ran).
  for (const dir of attachment.pending ?? []) targetComponents(dir.path);
  removeCreatedDirs(rootFd, attachment.pending ?? [], report, failures);
  dirsLeft.push(...stillThere(attachment.pending ?? []));
  report.problems = failures.map(messageOf);
  if (failures.length > 0) {
    const error = new DetachError(report, failures);
    error.remaining = { version: attachment.version, root: attachment.root, mounts: remaining, ...(dirsLeft.length > 0 ? { pending: dirsLeft } : {}) };
    throw error;
  }
  return report;
}
