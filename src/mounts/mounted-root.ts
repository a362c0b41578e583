// The one owner of "mounted and recorded" (testcontainers' start() → StartedTestContainer with
// stop() is the model). mountRecorded() attaches a plan and keeps its record current; the
// MountedRoot it returns is the only way back: tearDown() detaches and then removes the record.
// The CLI, the OCI hook and the runner all go through it, so each failure below is handled once:
//
// - The record is opened before anything is mounted, and every step of attach is appended to it
//   (a progress record: a process killed at any point leaves a record of what it made). The last
//   line, written after the last mount, is the final record: once attach returns there is nothing
//   left to save, so no mount can ever be left without its record.
// - A step that fails, a record write included, rolls attach back. When the rollback was whole,
//   the record goes too: nothing is mounted and nothing is recorded. When it was not, the record is
//   kept, because it names exactly what is left, and the result says so: a MountedRoot over it
//   (`leftover`) whose tearDown() tries again, which the caller then owns; so the caller's
//   teardown path can retry at once rather than leave it for the next start.
// - tearDown() keeps the record when detaching fails (the operator or the next start can retry),
//   and is a no-op once it has succeeded.
//
// The root fd is borrowed, never closed here: the caller keeps it open until tearDown() is done.
import { errnoCodeOf, kindOf, messageOf, MountatError } from '../base/index.js';
import type { FdRef } from '../linux/index.js';
import { attach, type Attachment } from './attach.js';
import { detach, detachAsync, DetachError, removeDirectoriesOfCopy, type DetachReport } from './detach.js';
import { AttachError } from './errors.js';
import type { Plan } from './plan.js';
import type { RecordStore } from './record.js';
import type { MountStock } from './stock.js';

/**
 * What the owner needs of a record store (a RecordStore; a test may wrap one to make it fail).
 * With `save`, a teardown that fails rewrites the record to what is left; without, it keeps it whole.
 */
export type RecordKeeping = Pick<RecordStore, 'journal' | 'load' | 'remove' | 'pathFor'> & Partial<Pick<RecordStore, 'save'>>;

/** A record with the fields a caller added to every line of it (the runner's input root). */
export type RecordOf<Extra> = Attachment & Extra;

export interface MountRecordedOptions<Extra extends object> {
  records: RecordKeeping;
  key: string;
  /** Written with every line of the record, e.g. where the root was. */
  extra?: Extra | undefined;
  procPidns?: FdRef | undefined;
  /** Mounts made ahead, taken from where it has them (attach's `stock`). */
  stock?: MountStock | undefined;
  /**
   * A record with mounts already under `key`: refuse (the command line: the operator mounted this
   * root before and has not unmounted it), or replace it (an OCI container id used again), telling
   * `onReplace` so that the caller can warn. The runner's keys are new for each action: it passes
   * 'replace' without onReplace, and nothing is read.
   */
  existing: 'refuse' | 'replace';
  onReplace?: ((recordPath: string) => void) | undefined;
  /**
   * `root` is a detached copy of this root (detached-copy.ts): the plan is attached to the copy,
   * not rolled back on failure (attach's `detachedCopy`), and the MountedRoot, returned whether it
   * failed or not, tears down beneath this root once the caller has closed the copy. By then its
   * mounts are gone with it; what is left is the directories made for them, which the record names.
   */
  copyOf?: FdRef | undefined;
}

/** A record with mounts already exists under the key, and the caller asked to refuse. */
export class AlreadyRecordedError extends MountatError {
  readonly recordPath: string;

  constructor(recordPath: string) {
    super('precondition', `mounts are already recorded in ${recordPath}`);
    this.name = 'AlreadyRecordedError';
    this.recordPath = recordPath;
  }
}

/**
 * What mountRecorded() leaves its caller owning: the mounted root; or, when it failed, the error
 * and, if the rollback failed too, the owner of what is left (its record kept).
 */
export type MountAttempt<Extra extends object = object> =
  { mounted: MountedRoot<Extra>; error?: undefined; leftover?: undefined } | { mounted?: undefined; error: Error; leftover: MountedRoot<Extra> | undefined };

/** The report of a teardown that had nothing left to do (a second call). */
const nothingDetached = (): DetachReport => ({ detached: [], notMounted: [], stacked: [], removed: [], kept: [], problems: [] });

export class MountedRoot<Extra extends object = object> implements Disposable {
  #attachment: RecordOf<Extra>;
  readonly recordPath: string;
  readonly #root: FdRef;
  readonly #records: RecordKeeping;
  readonly #key: string;
  #tornDown = false;
  #tearingDown: Promise<DetachReport> | undefined;
  readonly #onCopy: boolean;

  /**
   * Take ownership of what `attachment` (a record, or attach's result) says is mounted beneath
   * `root`. `onCopy`: it was attached to a detached copy of `root`, which the caller closes before
   * the teardown; that then removes the directories made, with no lookup or unmount of a mount.
   */
  constructor(root: FdRef, attachment: RecordOf<Extra>, records: RecordKeeping, key: string, { onCopy = false } = {}) {
    this.#root = root;
    this.#attachment = attachment;
    this.#records = records;
    this.#key = key;
    this.#onCopy = onCopy;
    this.recordPath = records.pathFor(key);
  }

  /** The owner of what the record under `key` says is mounted beneath `root`; undefined if there is none. */
  static fromRecord<Extra extends object = object>(root: FdRef, records: RecordKeeping, key: string, { onCopy = false } = {}): MountedRoot<Extra> | undefined {
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the schema keeps a caller's own fields unchecked: Extra is the caller's word for what its mountRecorded wrote
    const record = records.load(key) as RecordOf<Extra> | undefined;
    return record && new MountedRoot<Extra>(root, record, records, key, { onCopy });
  }

  /** The teardown's own work: detach, or after a copy, the directories made. */
  #detach(): DetachReport {
    return this.#onCopy ? removeDirectoriesOfCopy(this.#root, this.#attachment) : detach(this.#root, this.#attachment);
  }

  /** What is mounted: what attach made, or, after a teardown that failed, what it left. */
  get attachment(): RecordOf<Extra> {
    return this.#attachment;
  }

  get tornDown(): boolean {
    return this.#tornDown;
  }

  /**
   * Detach, then remove the record. Throws DetachError (after trying everything) with the record
   * kept; a second call after success does nothing.
   */
  tearDown(): DetachReport {
    if (this.#tornDown) return nothingDetached();
    const report = this.#settle(() => this.#detach());
    this.#done();
    return report;
  }

  /**
   * tearDown(), with the unmount's wait for the kernel (its one umount2 of a plan proven ours) on
   * a thread of libuv's pool (detachAsync): the event loop runs other actions meanwhile. The root
   * fd stays borrowed until the promise settles. Calls while one runs get that same teardown.
   */
  tearDownAsync(): Promise<DetachReport> {
    if (this.#tornDown) return Promise.resolve(nothingDetached());
    this.#tearingDown ??= (async () => {
      try {
        const detaching = this.#onCopy ? Promise.resolve().then(() => this.#detach()) : detachAsync(this.#root, this.#attachment);
        const report = await detaching.catch((error: unknown) => {
          this.#keepWhatIsLeft(error);
          throw error;
        });
        this.#done();
        return report;
      } finally {
        this.#tearingDown = undefined;
      }
    })();
    return this.#tearingDown;
  }

  #done(): void {
    this.#tornDown = true;
    this.#records.remove(this.#key);
  }

  /** tearDown() as a disposable: `using` and DisposableStack end what they own with it. */
  [Symbol.dispose](): void {
    this.tearDown();
  }

  /** Detach what can be detached now, keeping the record (a first pass, when something may still cover it). */
  detachKeepingRecord(): DetachReport {
    return this.#settle(() => this.#detach());
  }

  /**
   * A detach; where it fails, the record is rewritten (whole, renamed into place) to say exactly
   * what is left, and so is this owner's attachment. A record that cannot be rewritten is kept as
   * it was: it names more than is left, which a retry finds gone.
   */
  #settle(run: () => DetachReport): DetachReport {
    try {
      return run();
    } catch (error) {
      this.#keepWhatIsLeft(error);
      throw error;
    }
  }

  #keepWhatIsLeft(error: unknown): void {
    if (!(error instanceof DetachError) || !error.remaining || !this.#records.save) return;
    const extra = Object.fromEntries(Object.entries(this.#attachment).filter(([key]) => !['version', 'root', 'mounts', 'pending'].includes(key)));
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the caller's own fields, copied from the attachment they came with
    const left = { ...error.remaining, ...extra } as RecordOf<Extra>;
    try {
      this.#records.save(this.#key, left);
      this.#attachment = left;
    } catch {
      // The record stays as it was: still a record of everything left, and more.
    }
  }
}

/**
 * Attach `plan` beneath `root` with its record under `key`, kept current at every step. On
 * failure nothing is mounted and no record is left; or, when the rollback itself failed, the
 * result's `leftover` owns the record of what is left. Errors in the options (a record already
 * there that must not be replaced) are thrown: nothing was done yet.
 */
export function mountRecorded<Extra extends object = object>(root: FdRef, plan: Plan, options: MountRecordedOptions<Extra>): MountAttempt<Extra> {
  const { records, key } = options;
  if (options.existing === 'refuse' || options.onReplace) {
    const existing = records.load(key);
    if (existing && existing.mounts.length > 0) {
      if (options.existing === 'refuse') throw new AlreadyRecordedError(records.pathFor(key));
      options.onReplace?.(records.pathFor(key));
    }
  }
  // Opened before anything is mounted: a store that cannot be written to stops us here.
  let journal: ReturnType<RecordKeeping['journal']>;
  try {
    journal = records.journal(key);
  } catch (error) {
    return { error: recordWriteError(records, key, error), leftover: undefined };
  }
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- a caller that adds nothing leaves Extra at its default, object, which {} is
  const extra = options.extra ?? ({} as Extra);
  const append = (snapshot: Attachment) => {
    try {
      journal.append({ ...snapshot, ...extra });
    } catch (error) {
      throw recordWriteError(records, key, error);
    }
  };
  let attachment: Attachment;
  try {
    attachment = attach(root, plan, { procPidns: options.procPidns, onProgress: append, detachedCopy: options.copyOf !== undefined, stock: options.stock });
  } catch (error) {
    journal.close();
    if (options.copyOf) return leftOnCopy<Extra>(error, options.copyOf, records, key);
    return undone<Extra>(error, root, records, key);
  }
  const mounted = new MountedRoot<Extra>(options.copyOf ?? root, { ...attachment, ...extra }, records, key, { onCopy: options.copyOf !== undefined });
  try {
    journal.close();
  } catch (error) {
    // Where a close reports a failed write-back (NFS), the record may not hold: undo, as for any step.
    const closing = recordWriteError(records, key, error);
    try {
      mounted.tearDown();
    } catch (teardownError) {
      // The record is kept (tearDown() keeps it when it fails): owned, as for a failed rollback.
      return { error: new AttachError(closing, [teardownError]), leftover: mounted };
    }
    return { error: closing, leftover: undefined };
  }
  return { mounted };
}

function recordWriteError(records: RecordKeeping, key: string, error: unknown): MountatError {
  const why = errnoCodeOf(error) ?? messageOf(error);
  return new MountatError('kernel', `cannot write the record ${records.pathFor(key)}: ${why}`, { cause: error });
}

/**
 * A failed attach to a detached copy: nothing was rolled back. The owner of what the record names
 * (beneath the original root) is the leftover, whose teardown, once the caller has closed the
 * copy, removes the directories made; with no record to name them, none was made.
 */
function leftOnCopy<Extra extends object>(error: unknown, original: FdRef, records: RecordKeeping, key: string): MountAttempt<Extra> {
  const failure = error instanceof Error ? error : new MountatError('internal', String(error));
  let leftover: MountedRoot<Extra> | undefined;
  try {
    leftover = MountedRoot.fromRecord<Extra>(original, records, key, { onCopy: true });
  } catch {
    // A record cut short by the very write that failed: it stays for the next start's recovery.
    return { error: failure, leftover: undefined };
  }
  try {
    if (!leftover) records.remove(key);
  } catch {
    // Left for the next start's recovery, which finds nothing of it to undo.
  }
  return { error: failure, leftover };
}

/** A failed start, once the record is settled: removed if nothing is left, kept (and owned) if something is. */
function undone<Extra extends object>(error: unknown, root: FdRef, records: RecordKeeping, key: string): MountAttempt<Extra> {
  const failure = error instanceof Error ? error : new MountatError('internal', String(error));
  const incomplete = error instanceof AttachError && error.rollbackProblems.length > 0;
  if (incomplete) {
    let leftover: MountedRoot<Extra> | undefined;
    try {
      leftover = MountedRoot.fromRecord<Extra>(root, records, key);
    } catch {
      // A record cut short by the very write that failed: what is left is named in the error.
    }
    if (leftover) return { error: failure, leftover };
  }
  try {
    records.remove(key);
  } catch (removeError) {
    const removal = new MountatError(kindOf(removeError), `its record ${records.pathFor(key)} could not be removed: ${messageOf(removeError)}`, {
      cause: removeError,
    });
    if (error instanceof AttachError) return { error: new AttachError(error.cause, [...error.rollbackErrors, removal]), leftover: undefined };
    return { error: new AttachError(failure, [removal]), leftover: undefined };
  }
  return { error: failure, leftover: undefined };
}
