// The runner's setup and teardown of each action are OCI-style hook lists: prestart hooks run
// once the action's process exists (waiting at its gate), poststop hooks after it ended, always.
// "mountat" is the built-in hook: the engine in-process, no process start per action. Any other
// entry is executed like an OCI hook, with the state on stdin and the input root as fd 3.
import { constants as C, type Fd, openat2 } from '../linux/index.js';
import { AttachError, mountRecorded, parsePlan, type Attachment, type MountedRoot, type Plan, type RecordKeeping } from '../mounts/index.js';
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
  temporaryDirectory: Fd | undefined;
  /** The action's pid in the runner's namespace (pid 1 of its own PID namespace when it has one). */
  pid: number;
  pidNamespace: boolean;
}

/** What a prestart hook set up, undone: run where "mountat" stands in the poststop list. */
export interface Teardown {
  readonly description: string;
  run(): Promise<void>;
}

export interface ActionHook {
  readonly description: string;
  /**
   * A prestart hook returns the teardown of what it set up, if it leaves anything to undo; a
   * poststop hook is given the teardowns of the prestart hooks (the built-in one runs them).
   */
  run(action: ActionContext, teardowns: readonly Teardown[]): Promise<Teardown | undefined>;
}

/** A prestart hook failed, but left something its teardown must still undo (a rollback that failed). */
export class SetupError extends Error {
  readonly teardown: Teardown;

  constructor(cause: Error, teardown: Teardown) {
    super(cause.message, { cause });
    this.name = 'SetupError';
    this.teardown = teardown;
  }
}

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

export class BuiltinMountHook implements ActionHook {
  readonly description = 'built-in mountat prestart hook';
  constructor(private readonly settings: MountSettings) {}

  async run(action: ActionContext): Promise<Teardown> {
    // proc must show the action's PID namespace: made from outside it, through proc's pidns option.
    using pidns = action.pidNamespace ? openat2(C.AT_FDCWD, `/proc/${action.pid}/ns/pid`, { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: 0 }) : undefined;
    // The record is kept current as attach goes (the input root's path riding along), so that a
    // runner SIGKILLed mid-setup leaves a record of every directory and mount made so far.
    let mounted: MountedRoot<ActionRecordExtra>;
    try {
      mounted = mountRecorded(action.root, actionPlan(this.settings, action), {
        records: this.settings.records,
        key: recordKeyOf(action),
        extra: { inputRoot: action.paths.input_root_directory ?? '' },
        existing: 'replace',
        procPidns: pidns,
      });
    } catch (error) {
      // A rollback that failed left its record, owned by the error: poststop tries it again.
      if (error instanceof AttachError && error.leftover) throw new SetupError(error, this.#teardown(error.leftover, 0));
      throw error;
    }
    this.settings.observer.mountsHeld(mounted.attachment.mounts.length);
    return this.#teardown(mounted, mounted.attachment.mounts.length);
  }

  #teardown(owner: { tearDown(): unknown }, held: number): Teardown {
    const observer = this.settings.observer;
    return {
      description: 'built-in mountat poststop hook',
      async run() {
        owner.tearDown();
        if (held > 0) observer.mountsHeld(-held);
      },
    };
  }
}

/** Where "mountat" stands in the poststop list: the prestart hooks' teardowns run there, last set up first. */
export class BuiltinUnmountHook implements ActionHook {
  readonly description = 'built-in mountat poststop hook';

  async run(_action: ActionContext, teardowns: readonly Teardown[]): Promise<undefined> {
    const problems: string[] = [];
    for (const teardown of [...teardowns].reverse()) {
      try {
        await teardown.run();
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    return undefined;
  }
}

/** An external hook: an OCI hook entry run with the action's state and its root as fd 3. */
export class ExternalHook implements ActionHook {
  readonly description: string;
  private readonly stage: 'prestart' | 'poststop';
  private readonly entry: Exclude<HookSpec, 'mountat'>;
  private readonly index: number;

  constructor(entry: Exclude<HookSpec, 'mountat'>, stage: 'prestart' | 'poststop', index: number) {
    this.entry = entry;
    this.stage = stage;
    this.index = index;
    this.description = `${stage} hook #${index} (${entry.path})`;
  }

  async run(action: ActionContext): Promise<undefined> {
    const state: OciState = {
      ociVersion: '1.0.2',
      id: action.id,
      status: this.stage === 'prestart' ? 'creating' : 'stopped',
      pid: action.pid,
      bundle: action.buildDirectoryPath,
      annotations: Object.fromEntries(Object.entries(action.paths).map(([key, value]) => [`mountat.runner.${key}`, value])),
    };
    await new CommandHook(this.entry, this.stage, this.index, { fds: [{ name: 'root', fd: action.root.fd }] }).run(state);
    return undefined;
  }
}

export function hooksFor(stage: 'prestart' | 'poststop', specs: HookSpec[], mounts: MountSettings): ActionHook[] {
  return specs.map((spec, index) => {
    if (spec !== 'mountat') return new ExternalHook(spec, stage, index);
    return stage === 'prestart' ? new BuiltinMountHook(mounts) : new BuiltinUnmountHook();
  });
}
