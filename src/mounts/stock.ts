// Mounts made ahead of the action that needs them: what every action's plan makes the same way
// whatever its root and its PID namespace. A hardened sysfs (a new instance, read-only, its covers
// on it), and the sources of proc's masked covers (an empty read-only tmpfs, a bind of /dev/null),
// each with the ids read from its own fd, the proof detach needs (a mount keeps its ids when it
// is moved). The runner fills it while an action runs, when its thread only waits; attach() takes
// from it instead of making (attach.ts, cover.ts), and what it takes is the next action's alone.
// proc itself cannot be made ahead: it is the action's PID namespace's, which does not exist yet.
import type { Fd } from '../linux/index.js';
import { makeAhead } from './attach.js';
import { makeMaskedCover, type CoverSource, type StockedCover } from './cover.js';
import { COVERS, type CoverSpec } from './covers.js';
import type { Cover } from './generated/mount-record.js';
import { mountIdentityOf, type MountIdentity } from './identity.js';
import type { Plan, PlannedMount } from './plan.js';

/** A sysfs made ahead: its fd, its ids, and the covers already on it (with theirs). */
export interface StockedMount {
  fd: Fd;
  identity: MountIdentity;
  covers: Cover[] | undefined;
}

export class MountStock implements CoverSource, Disposable {
  readonly #mounts = new Map<PlannedMount, StockedMount>();
  readonly #covers = new Map<CoverSpec, StockedCover>();
  /** What could not be made ahead once (the kernel refused, say): made on the action's way, as without a stock. */
  readonly #unstockable = new Set<PlannedMount | CoverSpec>();
  #disposed = false;

  /**
   * Make ahead what is missing for the next action of `plan`: one of each. Never throws: whatever
   * cannot be made here is made on the action's way, where its error is that action's.
   */
  fill(plan: Plan): void {
    if (this.#disposed) return;
    for (const entry of plan.mounts) {
      if (entry.kind === 'sysfs' && !this.#mounts.has(entry) && !this.#unstockable.has(entry)) this.#fillMount(entry);
      if (entry.kind === 'proc' && entry.hardened) for (const spec of COVERS.proc) if (spec.how === 'masked') this.#fillCover(spec, entry.target);
    }
  }

  #fillMount(entry: Extract<PlannedMount, { kind: 'sysfs' }>): void {
    try {
      const made = makeAhead(entry);
      if (made === undefined) {
        this.#unstockable.add(entry);
        return;
      }
      this.#mounts.set(entry, made);
    } catch {
      this.#unstockable.add(entry);
    }
  }

  #fillCover(spec: CoverSpec, target: string): void {
    if (this.#covers.has(spec) || this.#unstockable.has(spec)) return;
    let fd: Fd | undefined;
    try {
      fd = makeMaskedCover(spec, `${target}/${spec.name}`);
      this.#covers.set(spec, { fd, identity: mountIdentityOf(fd) });
    } catch {
      fd?.close();
      this.#unstockable.add(spec);
    }
  }

  /** The sysfs made ahead for `entry`, now the caller's to attach or close; undefined if none. */
  takeMount(entry: PlannedMount): StockedMount | undefined {
    const stocked = this.#mounts.get(entry);
    this.#mounts.delete(entry);
    return stocked;
  }

  /** The masked cover made ahead for `spec`, now the caller's; undefined if none. */
  takeCover(spec: CoverSpec): StockedCover | undefined {
    const stocked = this.#covers.get(spec);
    this.#covers.delete(spec);
    return stocked;
  }

  /** How many mounts it holds (tests). */
  get size(): number {
    return this.#mounts.size + this.#covers.size;
  }

  /** Close everything it holds: detached, the mounts go with their last fd. */
  [Symbol.dispose](): void {
    this.#disposed = true;
    for (const stocked of this.#mounts.values()) stocked.fd.close();
    for (const stocked of this.#covers.values()) stocked.fd.close();
    this.#mounts.clear();
    this.#covers.clear();
  }
}
