// The runner's setup and teardown of each action are OCI-style hook lists: prestart hooks run
// once the action's process exists (waiting at its gate), poststop hooks after it has stopped,
// always. "mountat" is the built-in hook: the engine in-process, no process start per action. Any
// other entry is executed like an OCI hook, with the state on stdin and the input root as fd 3.
//
// A prestart hook pushes what undoes its setup on the session's stack as it goes, so what it made
// is owned even when it fails half-way (a rollback that failed leaves its record's owner there).
// Those undos run after the action has stopped: where "mountat" stands in the poststop list, or
// after the last poststop hook when it is not there.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { disposalErrors } from '../base/session.js';
import { openPidNamespace, type Fd } from '../linux/index.js';
import { mountRecorded, MountStock, parsePlan, type Attachment, type MountedRoot, type Plan, type RecordKeeping } from '../mounts/index.js';
import { CommandHook, type OciState } from '../oci/index.js';
import type { HookSpec } from './config.js';
import type { RunnerObserver } from './observer.js';

export interface ActionContext {
  /** The action's directory name under the build directory, e.g. "2f1c…". */
  id: string;
  buildDirectoryPath: string;
  /** The request's paths, as bb_worker sent them (relative to the build directory). */
  paths: Record<string, string>;
  root: Fd;
  /**
   * A detached copy of the root (mounts/detached-copy.ts) where the built-in hook mounts, when it
   * is the only prestart hook: the action is rooted in the copy, so its mounts are never in this
   * process's namespace. Owned by the action's session; the hook's undo closes it first.
   */
  rootCopy?: Fd | undefined;
  temporaryDirectory: Fd | undefined;
  /** The action's pid in the runner's namespace (pid 1 of its own PID namespace when it has one). */
  pid: number;
  /**
   * Once it has stopped: whether the starter said how the command ended, and so had entered its
   * root (attached the copy in the action's namespace) before. False where it failed to start, was
   * killed from outside first, or was never heard of.
   */
  rootEntered: () => boolean;
  pidNamespace: boolean;
}

export interface PrestartHook {
  readonly description: string;
  /** Set up; push what undoes each thing made on `undos` as soon as it is made. */
  setUp(action: ActionContext, undos: AsyncDisposableStack): Promise<void> | void;
  /** Once an action's gate has opened (this thread then only waits for it): make ahead what the next action's setup would. */
  prepareNext?(): void;
  /** The runner (or its thread) stops: let go of what was made ahead. */
  release?(): void;
}

export interface PoststopHook {
  readonly description: string;
  run(action: ActionContext): Promise<void>;
}

/** Where "mountat" stands in the poststop list: the prestart hooks' setup is undone there. */
export const UNDO_SETUP = 'undo-setup';
export type PoststopStep = PoststopHook | typeof UNDO_SETUP;

export interface MountSettings {
  plan: Plan;
  temporaryDirectoryMount: string | null;
  records: RecordKeeping;
  observer: RunnerObserver;
}

/** The record key of an action: records let a restarted runner tear down what a crash left. */
export const RECORD_PREFIX = 'action-';
export const recordKeyOf = (action: ActionContext) => `${RECORD_PREFIX}${action.id}`;

/** What the built-in hook records with every line: where the input root was. */
export interface ActionRecordExtra {
  inputRoot: string;
}
/** What the built-in hook records: the engine's attachment and where the input root was. */
export type ActionRecord = Attachment & ActionRecordExtra;

/** The plan for one action: the configured mounts, plus the request's temporary directory as a bind. */
function actionPlan(settings: MountSettings, action: ActionContext): Plan {
  if (settings.temporaryDirectoryMount === null || !action.temporaryDirectory) return settings.plan;
  const bind = parsePlan({ mounts: [{ target: settings.temporaryDirectoryMount, kind: 'bind', source: { fd: action.temporaryDirectory } }] });
  return { mounts: [...settings.plan.mounts, ...bind.mounts] };
}

/** An error named after the hook it came from (an external hook's error already names it). */
function named(description: string, error: unknown): unknown {
  return messageOf(error).startsWith(description) ? error : MountatError.wrap(kindOf(error), description, error);
}

export class BuiltinMountHook implements PrestartHook {
  readonly description = 'built-in mountat prestart hook';
  /** A sysfs with its covers and proc's masked covers, made while an action runs (mounts/stock.ts). */
  readonly #stock = new MountStock();
  constructor(private readonly settings: MountSettings) {}

  prepareNext(): void {
    this.#stock.fill(this.settings.plan);
  }

  release(): void {
    this.#stock[Symbol.dispose]();
  }

  setUp(action: ActionContext, undos: AsyncDisposableStack): void {
    // proc must show the action's PID namespace: made from outside it, through proc's pidns option.
    using pidns = action.pidNamespace ? openPidNamespace(action.pid) : undefined;
    // The record is kept current as attach goes (the input root's path riding along), so that a
    // runner SIGKILLed mid-setup leaves a record of every directory and mount made so far. On a
    // copy of the root, what a restarted runner can find of it is the directories made.
    const copy = action.rootCopy;
    const attempt = mountRecorded(copy ?? action.root, actionPlan(this.settings, action), {
      records: this.settings.records,
      key: recordKeyOf(action),
      extra: { inputRoot: action.paths.input_root_directory ?? '' },
      existing: 'replace',
      procPidns: pidns,
      stock: this.#stock,
      copyOf: copy && action.root,
    });
    const owned = attempt.mounted ?? attempt.leftover;
    // A rollback that failed (or, on a copy, none) left its record's owner: the undo tries again
    // after the action stops.
    if (owned) undos.defer(() => this.#undo(action, owned, attempt.mounted ? owned.attachment.mounts.length : 0, copy));
    if (attempt.error) throw attempt.error;
    this.settings.observer.mountsHeld(attempt.mounted.attachment.mounts.length);
  }

  /**
   * The one umount2 of a teardown waits on a thread of libuv's pool, not on this one
   * (mounted-root.ts). On a copy there is no umount2: the starter attached the copy in the
   * action's namespace, whose end took the mounts (our close then only lets go of it, here), or,
   * where it never did, our close of it does (on the pool too: the kernel's unmount of a detached
   * tree waits for an RCU grace period); the teardown then removes the directories made for them.
   */
  async #undo(action: ActionContext, owner: MountedRoot<ActionRecordExtra>, held: number, copy: Fd | undefined): Promise<void> {
    try {
      if (copy && action.rootEntered()) copy.close();
      else await copy?.closeAsync();
      await owner.tearDownAsync();
    } catch (error) {
      throw MountatError.wrap(kindOf(error), 'built-in mountat poststop hook', error);
    }
    if (held > 0) this.settings.observer.mountsHeld(-held);
  }
}

/** An external hook: an OCI hook entry run with the action's state and its root as fd 3. */
export class ExternalHook implements PrestartHook, PoststopHook {
  readonly description: string;
  readonly #stage: 'prestart' | 'poststop';
  readonly #entry: Exclude<HookSpec, 'mountat'>;
  readonly #index: number;

  constructor(entry: Exclude<HookSpec, 'mountat'>, stage: 'prestart' | 'poststop', index: number) {
    this.#entry = entry;
    this.#stage = stage;
    this.#index = index;
    this.description = `${stage} hook #${index} (${entry.path})`;
  }

  /** It sets up nothing the runner could undo: its own poststop counterpart does that. */
  async setUp(action: ActionContext): Promise<void> {
    await this.run(action);
  }

  async run(action: ActionContext): Promise<void> {
    const state: OciState = {
      ociVersion: '1.0.2',
      id: action.id,
      status: this.#stage === 'prestart' ? 'creating' : 'stopped',
      pid: action.pid,
      bundle: action.buildDirectoryPath,
      annotations: Object.fromEntries(Object.entries(action.paths).map(([key, value]) => [`mountat.runner.${key}`, value])),
    };
    await new CommandHook(this.#entry, this.#stage, this.#index, { fds: [{ name: 'root', fd: action.root.fd }] }).run(state);
  }
}

export function prestartHooks(specs: HookSpec[], mounts: MountSettings): PrestartHook[] {
  return specs.map((spec, index) => (spec === 'mountat' ? new BuiltinMountHook(mounts) : new ExternalHook(spec, 'prestart', index)));
}

export function poststopSteps(specs: HookSpec[]): PoststopStep[] {
  return specs.map((spec, index) => (spec === 'mountat' ? UNDO_SETUP : new ExternalHook(spec, 'poststop', index)));
}

/** Run the prestart hooks in order; the first failure stops the setup (what it made stays owned by `undos`). */
export async function setUpAction(hooks: readonly PrestartHook[], action: ActionContext, undos: AsyncDisposableStack): Promise<void> {
  for (const hook of hooks) {
    try {
      await hook.setUp(action, undos);
    } catch (error) {
      throw MountatError.wrap('precondition', 'setting up the action failed', named(hook.description, error));
    }
  }
}

/**
 * The teardown once the action has stopped: every poststop step in order, the setup's undos where
 * "mountat" stands (or last), every failure kept (an AggregateError of them, each named).
 */
export async function tearDownAction(steps: readonly PoststopStep[], action: ActionContext, setup: AsyncDisposableStack): Promise<void> {
  const failures: unknown[] = [];
  const undoSetup = async () => {
    try {
      await setup.disposeAsync();
    } catch (error) {
      failures.push(...disposalErrors(error));
    }
  };
  for (const step of steps) {
    if (step === UNDO_SETUP) {
      await undoSetup();
      continue;
    }
    try {
      await step.run(action);
    } catch (error) {
      failures.push(named(step.description, error));
    }
  }
  // Never left for nobody: without "mountat" in the list, the setup is undone after the last hook.
  if (!setup.disposed) await undoSetup();
  if (failures.length > 0) throw new AggregateError(failures, '');
}
