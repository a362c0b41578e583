// What runAction needs, built from the runner's Settings and the parts each thread that runs
// actions opens for itself: the main thread with `actionThreads: 0`, else every worker thread
// (action-worker.ts). The isolation is decided once, at start-up, in the main thread.
import { kernelMountsOntoDetachedTrees, type RecordStore } from '../mounts/index.js';
import type { ActionCgroups, Isolation, StarterServer } from '../sandbox/index.js';
import type { ActionSettings } from './action.js';
import type { BuildDirectoryLocation } from './build-directory.js';
import type { Settings } from './config.js';
import { poststopSteps, prestartHooks } from './hooks.js';
import type { RunnerObserver } from './observer.js';

/** The Settings fields an action's run reads: plain data, posted as it is to every worker thread. */
export type ActionConfig = Pick<
  Settings,
  'setTmpdir' | 'temporaryDirectoryMount' | 'plan' | 'hooks' | 'limits' | 'stateDirectory' | 'buildDirectoryPath' | 'cgroupParent'
>;

export function actionConfigOf(settings: Settings): ActionConfig {
  const { setTmpdir, temporaryDirectoryMount, plan, hooks, limits, stateDirectory, buildDirectoryPath, cgroupParent } = settings;
  return { setTmpdir, temporaryDirectoryMount, plan, hooks, limits, stateDirectory, buildDirectoryPath, cgroupParent };
}

export interface ActionParts {
  isolation: Isolation;
  build: BuildDirectoryLocation;
  records: RecordStore;
  starterServer: StarterServer;
  cgroups: ActionCgroups | undefined;
  /** Told how many mounts the built-in hook holds. */
  observer: RunnerObserver;
}

export function actionSettingsOf(config: ActionConfig, parts: ActionParts): ActionSettings {
  const mounts = { plan: config.plan, temporaryDirectoryMount: config.temporaryDirectoryMount, records: parts.records, observer: parts.observer };
  return {
    build: parts.build,
    setTmpdir: config.setTmpdir,
    temporaryDirectoryMount: config.temporaryDirectoryMount,
    isolation: parts.isolation,
    // External prestart hooks get the root as fd 3 and mount on it as it is: then so does the built-in one.
    mountOnCopy: parts.isolation.root !== 'none' && config.hooks.prestart.every((spec) => spec === 'mountat') && kernelMountsOntoDetachedTrees(),
    starterServer: parts.starterServer,
    cgroups: parts.cgroups,
    oomScoreAdj: config.limits.oomScoreAdj,
    nice: config.limits.nice,
    prestart: prestartHooks(config.hooks.prestart, mounts),
    poststop: poststopSteps(config.hooks.poststop),
  };
}

/** What the settings' hooks made ahead is let go of (the runner, or its thread, stops). */
export function releaseActionSettings(settings: ActionSettings): void {
  for (const hook of settings.prestart) hook.release?.();
}
