// detach(): undo an Attachment, in reverse order, touching only what the engine made.
// Each target is looked up again beneath the root; a mount there is unmounted only if its
// kernel id is the one recorded at attach. Then the directories the engine created are
// removed if they are still the same, empty directories. Running it twice is a no-op.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { isErrno, printable, type Fd, type FdRef } from '../linux/index.js';
import type { AttachedMount, Attachment } from './attach.js';
import { removeCreatedDirs, type DirRemoval } from './dirs.js';
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
  /** What could not be undone, one line each (the DetachError keeps them as errors). */
  problems: string[];
}

/**
 * Detach did all it could, and these failed: the report says what was done, the causes (one, or an
 * AggregateError of several) why the rest was not. The message is the first failure's; the kind too.
 */
export class DetachError extends MountatError {
  readonly report: DetachReport;

  constructor(report: DetachReport, failures: readonly unknown[]) {
    const more = failures.length > 1 ? ` (and ${failures.length - 1} more)` : '';
    super(kindOf(failures[0]), `${messageOf(failures[0])}${more}`, { cause: failures.length === 1 ? failures[0] : new AggregateError(failures, '') });
    this.name = 'DetachError';
    this.report = report;
  }
}

type Outcome = 'detached' | 'not-mounted';

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
  unmountByFd(top, rootFd, mount.target);
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
  unmountByFd(fd, rootFd, where);
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
    unmountByFd(top, rootFd, mount.target);
    return 'detached';
  }
  const outcome = detachUnderStack(rootFd, mount, mountIdentityOf(top).mountId, report);
  return outcome === 'detached' || !detachMoved(rootFd, mount, report) ? outcome : 'detached';
}

/** Remove what `attachment` mounted and created beneath the root. Throws DetachError, after trying everything, if anything failed. */
export function detach(rootFd: FdRef, attachment: Attachment): DetachReport {
  const report: DetachReport = { detached: [], notMounted: [], stacked: [], removed: [], kept: [], problems: [] };
  const failures: unknown[] = [];
  const root = rootIdentityOf(rootFd);
  if (root.dev !== attachment.root.dev || root.ino !== attachment.root.ino) {
    throw new MountatError(
      'invalid-input',
      `the record is for another root (device ${attachment.root.dev} inode ${attachment.root.ino}, this is ${root.dev} inode ${root.ino})`,
    );
  }
  for (const mount of [...attachment.mounts].reverse()) {
    let outcome: Outcome;
    try {
      outcome = detachOne(rootFd, mount, report);
    } catch (error) {
      failures.push(new MountError(mount.target, `detach ${mount.kind} from`, error));
      continue;
    }
    (outcome === 'detached' ? report.detached : report.notMounted).push(mount.target);
    if (outcome === 'detached' && mount.covers?.length) (report.covers ??= []).push(...mount.covers.map((cover) => printable(cover.path)));
    removeCreatedDirs(rootFd, mount.createdDirs, report, failures);
  }
  // Directories created for a mount that was never made (a record written while attach ran).
  for (const dir of attachment.pending ?? []) targetComponents(dir.path);
  removeCreatedDirs(rootFd, attachment.pending ?? [], report, failures);
  report.problems = failures.map(messageOf);
  if (failures.length > 0) throw new DetachError(report, failures);
  return report;
}
