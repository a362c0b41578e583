// A cgroup of its own for every action, below one the runner (or `mountat exec`) owns: made in
// every tree the limits and the accounting need (the v2 tree always where mounted: cgroup.kill,
// cpu.stat and PSI are core files there; each controller in the v2 tree where this process's
// cgroup has it, else in its v1 hierarchy), joined by the action's first process itself (born
// into the v2 one by the starter, joining the v1 ones while it waits at its gate: CgroupEntry),
// emptied with cgroup.kill when it ends, read, and removed.
//
//   <parent>/mountat-<pid>[.<n>]/    ActionCgroups: this process's, removed when it is disposed
//   <parent>/mountat-<pid>/<n>/      ActionCgroup: one action's
//   <parent>/mountat-runner/         (v2, parent = own cgroup) where the runner's processes move,
//                                    so that its cgroup may enable controllers for its children
//
// Only directories made here are written or removed; /proc/self/cgroup's own cgroups and their
// files are never written, except that on v2 the runner moves its own processes into its leaf and
// enables controllers in its own cgroup's subtree_control (what "delegation" lets it do).
import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { describeError, errnoCodeOf, MountatError } from '../../base/index.js';
import { directoryOf, placeController, readLayout, type Hierarchy, type Layout } from './hierarchies.js';
import { limitWrites, readUsage } from './files.js';
import type { CgroupLimits, CgroupUsage, ControllerName } from './types.js';

type Use = ControllerName | 'cpuacct' | 'core';

/** One tree the actions' cgroups are made in, and what they use it for. */
interface Tree {
  hierarchy: Hierarchy;
  /** This process's directory below the parent: <parent>/mountat-<pid>. */
  base: string;
  uses: Use[];
}

export type LimitName = 'pids' | 'memoryBytes' | 'cpu';

export interface CgroupsOptions {
  limits: CgroupLimits;
  /** The cgroup (as /proc/self/cgroup names it) below which to work; default this process's own in each tree. */
  parent?: string | undefined;
  /** On v2, move this process's cgroup's processes into a leaf beside the actions (the runner; not `mountat exec`). */
  moveIntoLeaf: boolean;
  /** Read instead of /proc/self (tests). */
  layout?: Layout;
  /**
   * The `.<n>` of this process's base directory, from reserveInstance() (the runner's worker
   * threads: each opens its own, and the counter below is per thread); default the next one here.
   */
  instance?: number | undefined;
  /**
   * Keep the next action's cgroup made ahead (the runner): its directories, its limits and the
   * fds its first process enters it by are made while this thread would otherwise wait, not on an
   * action's way from its request to its start. Off for one action (`mountat exec`).
   */
  ahead?: boolean | undefined;
}

/** A limit or a figure this host cannot give, and why (one line). */
export interface Unavailable {
  what: LimitName | 'accounting' | 'kill';
  why: string;
}

export const RUNNER_LEAF = 'mountat-runner';
/** How many ActionCgroups this thread has opened or reserved: each gets a base directory of its own. */
let instances = 0;

/** A base directory number no other ActionCgroups of this thread takes, for an open() in another thread. */
export function reserveInstance(): number {
  return instances++;
}
const STOP_TIMEOUT_MS = 5000;
const V1_OOM_POLL_MS = 50;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCodeOf(error) === 'EPERM';
  }
}

/** Every process in a cgroup directory SIGKILLed until none is left (v1, or a v2 tree without cgroup.kill). */
function killListed(directory: string): void {
  for (let round = 0; round < 100; round++) {
    const pids = (read(`${directory}/cgroup.procs`) ?? '').split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
}

function populated(tree: Tree, directory: string): boolean {
  if (tree.hierarchy.version === 2) {
    const events = read(`${directory}/cgroup.events`);
    if (events !== undefined) return /^populated 1$/m.test(events);
  }
  return (read(`${directory}/cgroup.procs`) ?? '').trim() !== '';
}

function kill(trees: readonly Tree[], name: string): void {
  const v2 = trees.find((tree) => tree.hierarchy.version === 2);
  if (v2 && existsSync(`${v2.base}/${name}/cgroup.kill`)) writeFileSync(`${v2.base}/${name}/cgroup.kill`, '1');
  else if (trees[0]) killListed(`${trees[0].base}/${name}`);
}

/** rmdir, again while the kernel still counts processes that have just exited (EBUSY). */
async function removeDirectory(directory: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(directory);
      return;
    } catch (error) {
      const code = errnoCodeOf(error);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= 100) throw MountatError.wrap('kernel', `cannot remove the action's cgroup ${directory}`, error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(attempt + 1, 20)));
    }
  }
}

/** The cgroups of every action of this process, made below the parent in each tree. */
export class ActionCgroups implements Disposable {
  readonly #trees: Tree[];
  readonly #limits: CgroupLimits;
  readonly #ahead: boolean;
  #next = 0;
  /** The next action's cgroup, made ahead (options.ahead); nobody has been in it. */
  #ready: ActionCgroup | undefined;
  #making = false;
  #disposed = false;

  private constructor(trees: Tree[], limits: CgroupLimits, ahead: boolean) {
    this.#trees = trees;
    this.#limits = limits;
    this.#ahead = ahead;
  }

  /** The trees in use, by name, with the directory below which actions' cgroups are made (doctor, logs). */
  get bases(): Record<string, string> {
    return Object.fromEntries(this.#trees.map((tree) => [tree.hierarchy.name, tree.base]));
  }

  /**
   * Make this process's directory in every tree the limits and the accounting need. Returns what
   * cannot be had (the caller refuses to start over a limit it was asked for, and says the rest
   * once); `cgroups` is undefined where no tree could be used at all.
   */
  static open(options: CgroupsOptions): { cgroups: ActionCgroups | undefined; unavailable: Unavailable[] } {
    const layout = options.layout ?? readLayout();
    const unavailable: Unavailable[] = [];
    const { limits } = options;
    if (!layout.v2 && layout.v1.length === 0) {
      const why = 'no cgroup filesystem is mounted where this process can see it (/proc/self/mountinfo)';
      return { cgroups: undefined, unavailable: [...limitNames(limits).map((what) => ({ what, why })), { what: 'accounting', why }, { what: 'kill', why }] };
    }

    // What each controller is needed for, and the tree carrying it.
    const wanted: Array<{ use: Use; limit?: LimitName }> = [
      { use: 'core' },
      { use: 'pids', limit: 'pids' },
      { use: 'memory', limit: 'memoryBytes' },
      { use: 'io' },
    ];
    if (limits.cpu) wanted.push({ use: 'cpu', limit: 'cpu' });
    if (!layout.v2) wanted.push({ use: 'cpuacct' });
    const trees = new Map<Hierarchy, Use[]>();
    for (const { use, limit } of wanted) {
      const hierarchy = use === 'core' ? layout.v2 : placeController(layout, use);
      if (!hierarchy) {
        if (use === 'core') continue;
        const why = `no ${use === 'io' ? 'io (blkio)' : use} controller in the v2 tree of this process's cgroup nor in a v1 hierarchy`;
        if (limit && limitNames(limits).includes(limit)) unavailable.push({ what: limit, why });
        else unavailable.push({ what: 'accounting', why });
        continue;
      }
      trees.set(hierarchy, [...(trees.get(hierarchy) ?? []), use]);
    }

    const made: Tree[] = [];
    const instance = options.instance ?? reserveInstance();
    for (const [hierarchy, uses] of trees) {
      try {
        made.push(openTree(hierarchy, uses, options, instance));
      } catch (error) {
        const why = describeError(error);
        for (const use of uses) {
          const limit = use === 'pids' ? 'pids' : use === 'memory' ? 'memoryBytes' : use === 'cpu' ? 'cpu' : undefined;
          if (limit && limitNames(limits).includes(limit)) unavailable.push({ what: limit, why });
          else unavailable.push({ what: use === 'core' ? 'kill' : 'accounting', why });
        }
      }
    }
    return { cgroups: made.length > 0 ? new ActionCgroups(made, limits, options.ahead ?? false) : undefined, unavailable };
  }

  /**
   * A new action's cgroup in every tree, its limits written; the caller owns it (disposing removes
   * it). With options.ahead it is the one made ahead (makeAhead) where there is one.
   */
  create(): ActionCgroup {
    const made = this.#ready ?? new ActionCgroup(this.#trees, this.#limits, `${++this.#next}`);
    this.#ready = undefined;
    return made;
  }

  /** Make the next action's cgroup once this thread is free (options.ahead): called when an action has started running. */
  makeAhead(): void {
    if (!this.#ahead || this.#making || this.#disposed || this.#ready) return;
    this.#making = true;
    setImmediate(() => {
      this.#making = false;
      if (this.#disposed || this.#ready) return;
      try {
        const next = new ActionCgroup(this.#trees, this.#limits, `${++this.#next}`);
        next.prepareEntry();
        this.#ready = next;
      } catch {
        // Made again on the next action's way by create(), whose error is then that action's.
      }
    });
  }

  /** Remove this process's directories (every action's must be gone; the one made ahead goes here). */
  [Symbol.dispose](): void {
    this.#disposed = true;
    this.#ready?.discard();
    this.#ready = undefined;
    for (const tree of this.#trees) {
      try {
        rmdirSync(tree.base);
      } catch {
        // An action's cgroup that could not be removed keeps it; the next start sweeps it.
      }
    }
  }
}

/** The limits that are set, by their config names. */
function limitNames(limits: CgroupLimits): LimitName[] {
  const names: LimitName[] = [];
  if (limits.pids !== null) names.push('pids');
  if (limits.memoryBytes !== null) names.push('memoryBytes');
  if (limits.cpu !== null) names.push('cpu');
  return names;
}

function controllersOn(uses: readonly Use[]): ControllerName[] {
  return uses.filter((use): use is ControllerName => use === 'pids' || use === 'memory' || use === 'cpu' || use === 'io');
}

/** This process's base directory in one tree: stale ones of dead processes swept, controllers enabled on v2. */
function openTree(hierarchy: Hierarchy, uses: Use[], options: CgroupsOptions, instance: number): Tree {
  let parentPath = options.parent ?? hierarchy.ownPath;
  // A runner restarted in its own leaf works from the leaf's parent, as the first one did.
  if (options.parent === undefined && options.moveIntoLeaf && parentPath.endsWith(`/${RUNNER_LEAF}`))
    parentPath = parentPath.slice(0, -RUNNER_LEAF.length - 1) || '/';
  const parent = directoryOf(hierarchy, parentPath);
  if (parent === undefined || !existsSync(parent)) throw new MountatError('precondition', `the cgroup ${parentPath} is not in ${hierarchy.mount}`);
  sweepStale(parent);
  // One per ActionCgroups of this process (a test may start several runners in one process, the
  // runner one per worker thread).
  const base = `${parent}/mountat-${process.pid}${instance === 0 ? '' : `.${instance}`}`;
  const controllers = hierarchy.version === 2 ? controllersOn(uses) : [];
  try {
    if (controllers.length > 0 && options.moveIntoLeaf && parentPath === hierarchy.ownPath) moveIntoLeaf(parent);
    if (controllers.length > 0) enable(parent, controllers);
    mkdirSync(base);
    if (controllers.length > 0) enable(base, controllers);
  } catch (error) {
    try {
      rmdirSync(base);
    } catch {
      // Not made.
    }
    throw MountatError.wrap('not-permitted', `cannot make cgroups in ${parent}`, error);
  }
  return { hierarchy, base, uses };
}

/** Enable controllers for a cgroup's children (v2 cgroup.subtree_control); exported for the tests. */
export function enable(directory: string, controllers: readonly string[]): void {
  const enabled = (read(`${directory}/cgroup.subtree_control`) ?? '').trim().split(/\s+/);
  const missing = controllers.filter((c) => !enabled.includes(c));
  if (missing.length > 0) writeFileSync(`${directory}/cgroup.subtree_control`, missing.map((c) => `+${c}`).join(' '));
}

/** v2's "no internal processes": the cgroup's processes (the runner's) move to a leaf before it enables controllers. */
export function moveIntoLeaf(parent: string): void {
  const leaf = `${parent}/${RUNNER_LEAF}`;
  if (!existsSync(leaf)) mkdirSync(leaf);
  for (let round = 0; round < 10; round++) {
    const pids = (read(`${parent}/cgroup.procs`) ?? '').split('\n').filter(Boolean);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        writeFileSync(`${leaf}/cgroup.procs`, pid);
      } catch (error) {
        if (errnoCodeOf(error) !== 'ESRCH') throw error;
      }
    }
  }
}

/** Directories of processes that ended without removing theirs (a runner killed with SIGKILL): emptied and removed. */
function sweepStale(parent: string): void {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const entry of entries) {
    const match = /^mountat-(\d+)(?:\.\d+)?$/.exec(entry);
    if (!match || Number(match[1]) === process.pid || alive(Number(match[1]))) continue;
    const base = `${parent}/${entry}`;
    try {
      for (const child of readdirSync(base, { withFileTypes: true })) {
        if (!child.isDirectory()) continue;
        const directory = `${base}/${child.name}`;
        if (existsSync(`${directory}/cgroup.kill`)) writeFileSync(`${directory}/cgroup.kill`, '1');
        else killListed(directory);
        for (let attempt = 0; attempt < 100; attempt++) {
          try {
            rmdirSync(directory);
            break;
          } catch {
            sleepSync(10);
          }
        }
      }
      rmdirSync(base);
    } catch {
      // Another process's, or still busy: left for the next start.
    }
  }
}

/**
 * The fds by which the starter puts an action's first process into its cgroup without this
 * process's thread (native/starter/cgroup.c): the v2 directory it is born into
 * (clone3 CLONE_INTO_CGROUP), and the v1 trees' cgroup.procs files it writes "0" into. Owned by
 * whoever asked for them (the starter has its own copies once started); disposing closes them.
 */
export class CgroupEntry implements Disposable {
  /** The action's cgroup directory in the v2 tree, where there is one. */
  readonly directory: number | undefined;
  /** cgroup.procs of the action's cgroup in every other tree, open for writing. */
  readonly procs: readonly number[];

  constructor(directories: ReadonlyArray<{ path: string; version: 1 | 2 }>) {
    const opened: number[] = [];
    try {
      let directory: number | undefined;
      const procs: number[] = [];
      for (const { path, version } of directories) {
        const bornInto = version === 2 && directory === undefined;
        const fd = bornInto ? openSync(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY) : openSync(`${path}/cgroup.procs`, fsConstants.O_WRONLY);
        opened.push(fd);
        if (bornInto) directory = fd;
        else procs.push(fd);
      }
      this.directory = directory;
      this.procs = procs;
    } catch (error) {
      for (const fd of opened) closeSync(fd);
      throw MountatError.wrap('kernel', "cannot open the action's cgroup for its start", error);
    }
  }

  [Symbol.dispose](): void {
    if (this.directory !== undefined) closeSync(this.directory);
    for (const fd of this.procs) closeSync(fd);
  }
}

/** One action's cgroup in every tree; its only owner. */
export class ActionCgroup implements AsyncDisposable {
  readonly #trees: Tree[];
  readonly #limits: CgroupLimits;
  readonly #name: string;
  #oomWatch: NodeJS.Timeout | undefined;
  #oomKilled = false;
  #stopped = false;
  /** The entry fds, opened ahead (prepareEntry) until entry() hands them on. */
  #entry: CgroupEntry | undefined;

  constructor(trees: Tree[], limits: CgroupLimits, name: string) {
    this.#trees = trees;
    this.#limits = limits;
    this.#name = name;
    const made: string[] = [];
    try {
      for (const tree of trees) {
        const directory = this.#directory(tree);
        mkdirSync(directory);
        made.push(directory);
        for (const use of controllersOn(tree.uses)) {
          for (const write of limitWrites(use, tree.hierarchy.version, limits)) {
            if (write.optional && !existsSync(`${directory}/${write.file}`)) continue;
            writeFileSync(`${directory}/${write.file}`, write.value);
          }
        }
      }
    } catch (error) {
      for (const directory of made.reverse()) {
        try {
          rmdirSync(directory);
        } catch {
          // Left for the start-up sweep.
        }
      }
      throw MountatError.wrap('kernel', "cannot make the action's cgroup", error);
    }
  }

  #directory(tree: Tree): string {
    return `${tree.base}/${this.#name}`;
  }

  /** Directories of the cgroup, by tree name (tests, doctor). */
  get directories(): Record<string, string> {
    return Object.fromEntries(this.#trees.map((tree) => [tree.hierarchy.name, this.#directory(tree)]));
  }

  /** The fds by which the starter's child enters the cgroup in every tree by itself (the action's way in); the caller owns them. */
  entry(): CgroupEntry {
    const entry = this.#entry ?? new CgroupEntry(this.#trees.map((tree) => ({ path: this.#directory(tree), version: tree.hierarchy.version })));
    this.#entry = undefined;
    return entry;
  }

  /** Open the entry fds now, for entry() to hand on later (a cgroup made ahead). */
  prepareEntry(): void {
    this.#entry ??= this.entry();
  }

  /** A cgroup nobody has been in, removed at once (the one made ahead, when the runner stops). */
  discard(): void {
    this.#entry?.[Symbol.dispose]();
    this.#entry = undefined;
    for (const tree of [...this.#trees].reverse()) {
      try {
        rmdirSync(this.#directory(tree));
      } catch {
        // Left for the start-up sweep.
      }
    }
  }

  /**
   * Move `pid` (waiting at its gate, before its first instruction) into the cgroup in every tree
   * from this process; what it starts inherits it. For processes started otherwise than by the
   * starter (the action's way is entry(): a migration from here blocks this thread).
   */
  join(pid: number): void {
    for (const tree of this.#trees) writeFileSync(`${this.#directory(tree)}/cgroup.procs`, String(pid));
    this.watch();
  }

  /** Once its first process is in: on v1, watch for the kernel's OOM kill (see below). */
  watch(): void {
    if (this.#oomWatch !== undefined) return;
    // v1 has no memory.oom.group: the kernel kills one process, and the rest goes here.
    const memory = this.#trees.find((tree) => tree.hierarchy.version === 1 && tree.uses.includes('memory'));
    if (memory && this.#limits.memoryBytes !== null) {
      const file = `${this.#directory(memory)}/memory.oom_control`;
      this.#oomWatch = setInterval(() => {
        if (/^oom_kill [1-9]/m.test(read(file) ?? '')) {
          this.#oomKilled = true;
          clearInterval(this.#oomWatch);
          this.kill();
        }
      }, V1_OOM_POLL_MS).unref();
    }
  }

  /** Kill everything in the cgroup (cgroup.kill where there is a v2 tree). */
  kill(): void {
    try {
      kill(this.#trees, this.#name);
    } catch {
      // Removed already, or nothing to kill.
    }
  }

  /** Kill what is left and wait until the cgroup is empty: then its figures are final. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    clearInterval(this.#oomWatch);
    const tree = this.#trees[0];
    if (!tree) return;
    const directory = this.#directory(tree);
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    let killed = false;
    for (let delay = 0; populated(tree, directory); delay = Math.min(delay + 1, 20)) {
      if (!killed || delay === 20) {
        kill(this.#trees, this.#name);
        killed = true;
      }
      if (Date.now() > deadline)
        throw new MountatError('kernel', `the action's cgroup ${directory} still has processes ${STOP_TIMEOUT_MS / 1000} s after it was killed`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    this.#stopped = true;
  }

  /** The cgroup's figures (after stop(): final). */
  usage(): CgroupUsage {
    const usage: CgroupUsage = { oomKilled: this.#oomKilled };
    for (const tree of this.#trees) {
      const directory = this.#directory(tree);
      readUsage(tree.hierarchy.version, tree.uses, (file) => read(`${directory}/${file}`), usage);
    }
    return usage;
  }

  /** Kill what is left, wait for it, remove the cgroup in every tree: the first failure is thrown, after every step was tried. */
  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.#oomWatch);
    this.#entry?.[Symbol.dispose]();
    this.#entry = undefined;
    const failures: unknown[] = [];
    await this.stop().catch((error: unknown) => failures.push(error));
    for (const tree of this.#trees) await removeDirectory(this.#directory(tree)).catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw failures[0];
  }
}
