// The runner's setup and teardown of each action are OCI-style hook lists: prestart hooks run
// once the action's process exists (waiting at its gate), poststop hooks after it ended, always.
// "mountat" is the built-in hook: the engine in-process, no process start per action. Any other
// entry is executed like an OCI hook, with the state on stdin and the input root as fd 3.
import { constants as C, type Fd, openat2 } from '../linux/index.js';
import { attach, AttachError, detach, parsePlan, type Attachment, type Plan, type RecordStore } from '../mounts/index.js';
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
  /** Set by the built-in prestart hook for its poststop twin. */
  attachment?: Attachment | undefined;
}

export interface ActionHook {
  readonly description: string;
  run(action: ActionContext): Promise<void>;
}

export interface MountSettings {
  plan: Plan;
  temporaryDirectoryMount: string | null;
  records: RecordStore;
  observer: RunnerObserver;
}

/** The record key of an action: records let a restarted runner tear down what a crash left. */
export const RECORD_PREFIX = 'action-';
export const recordKeyOf = (action: ActionContext) => `${RECORD_PREFIX}${action.id}`;

/** What the built-in hook records: the engine's attachment and where the input root was. */
export type ActionRecord = Attachment & { inputRoot: string };

/** The plan for one action: the configured mounts, plus the request's temporary directory as a bind. */
function actionPlan(settings: MountSettings, action: ActionContext): Plan {
  if (settings.temporaryDirectoryMount === null || !action.temporaryDirectory) return settings.plan;
  const bind = parsePlan({ mounts: [{ target: settings.temporaryDirectoryMount, kind: 'bind', source: { fd: action.temporaryDirectory.fd } }] });
  return { mounts: [...settings.plan.mounts, ...bind.mounts] };
}

export class BuiltinMountHook implements ActionHook {
  readonly description = 'built-in mountat prestart hook';
  constructor(private readonly settings: MountSettings) {}

  async run(action: ActionContext): Promise<void> {
    // proc must show the action's PID namespace: made from outside it, through proc's pidns option.
    using pidns = action.pidNamespace ? openat2(C.AT_FDCWD, `/proc/${action.pid}/ns/pid`, { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: 0 }) : undefined;
    // The record is written as attach goes (the input root's path riding along), so that a runner
    // SIGKILLed mid-setup leaves a record of every directory and mount made so far: one line a
    // step, appended to a file opened once (every action pays for it).
    const key = recordKeyOf(action);
    const inputRoot = action.paths.input_root_directory ?? '';
    const journal = this.settings.records.journal(key);
    try {
      action.attachment = attach(action.root, actionPlan(this.settings, action), {
        procPidns: pidns,
        onProgress: (snapshot: Attachment) => journal.append({ ...snapshot, inputRoot } satisfies ActionRecord),
      });
    } catch (error) {
      // Rolled back whole: nothing is left for the record to describe. Else it stays for the next start.
      if (error instanceof AttachError && error.rollbackProblems.length === 0) this.settings.records.remove(key);
      throw error;
    } finally {
      journal.close();
    }
    this.settings.observer.mountsHeld(action.attachment.mounts.length);
  }
}

export class BuiltinUnmountHook implements ActionHook {
  readonly description = 'built-in mountat poststop hook';
  constructor(private readonly settings: MountSettings) {}

  async run(action: ActionContext): Promise<void> {
    if (!action.attachment) return;
    detach(action.root, action.attachment);
    this.settings.observer.mountsHeld(-action.attachment.mounts.length);
    this.settings.records.remove(recordKeyOf(action));
    action.attachment = undefined;
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

  async run(action: ActionContext): Promise<void> {
    const state: OciState = {
      ociVersion: '1.0.2',
      id: action.id,
      status: this.stage === 'prestart' ? 'creating' : 'stopped',
      pid: action.pid,
      bundle: action.buildDirectoryPath,
      annotations: Object.fromEntries(Object.entries(action.paths).map(([key, value]) => [`mountat.runner.${key}`, value])),
    };
    await new CommandHook(this.entry, this.stage, this.index, { fds: [{ name: 'root', fd: action.root.fd }] }).run(state);
  }
}

export function hooksFor(stage: 'prestart' | 'poststop', specs: HookSpec[], mounts: MountSettings): ActionHook[] {
  return specs.map((spec, index) => {
    if (spec !== 'mountat') return new ExternalHook(spec, stage, index);
    return stage === 'prestart' ? new BuiltinMountHook(mounts) : new BuiltinUnmountHook(mounts);
  });
}
