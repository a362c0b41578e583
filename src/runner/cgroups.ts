// The runner's cgroups at start-up: a cgroup of its own for every action (src/sandbox/cgroups/),
// or a refusal to start where the config asks for a limit this host cannot enforce, or one warning
// saying what actions go without where it asks for none.
import type { Logger } from 'pino';
import { ActionCgroups, probeCgroups, type LimitName } from '../sandbox/index.js';
import type { Settings } from './config.js';
import { ConfigError } from './config.js';

export const CGROUPS_FIX =
  'give the runner a cgroup it may write: a writable cgroup file system, and in a user namespace a cgroup delegated to its root (docs/cgroups.md#in-a-container-and-in-kubernetes)';

export function openActionCgroups(settings: Pick<Settings, 'limits' | 'requiredLimits' | 'cgroupParent'>, log: Logger): ActionCgroups | undefined {
  const { cgroups, unavailable } = ActionCgroups.open({ limits: settings.limits, parent: settings.cgroupParent, moveIntoLeaf: true, ahead: true });
  const refused = unavailable.find((u) => (settings.requiredLimits as string[]).includes(u.what));
  if (refused) {
    cgroups?.[Symbol.dispose]();
    throw new ConfigError(`config.limits.${refused.what} cannot be enforced (${refused.why}): ${CGROUPS_FIX}, or remove limits.${refused.what}`);
  }
  if (unavailable.length > 0) {
    const what = [...new Set(unavailable.map((u) => u.what))];
    log.warn(
      { unavailable, cgroups: cgroups?.bases },
      `actions run without ${what.map((w) => (w === 'accounting' ? 'some cgroup figures' : w === 'kill' ? 'a cgroup to kill what they leave' : `the ${w} limit`)).join(', ')}: ${CGROUPS_FIX}`,
    );
  } else log.debug({ cgroups: cgroups?.bases }, 'action cgroups');
  return cgroups;
}

const CONTROLLER_OF: Record<LimitName, 'pids' | 'memory' | 'cpu'> = { pids: 'pids', memoryBytes: 'memory', cpu: 'cpu' };

/**
 * `mountat runner --check`: the same refusal as start-up, from a probe that changes nothing (a
 * cgroup made and removed at once; no process moved, no controller enabled).
 */
export function checkLimits(settings: Pick<Settings, 'requiredLimits' | 'cgroupParent'>): void {
  if (settings.requiredLimits.length === 0) return;
  const probe = probeCgroups(settings.cgroupParent);
  for (const limit of settings.requiredLimits) {
    const why = probe.controllers[CONTROLLER_OF[limit]] === null ? `no ${CONTROLLER_OF[limit]} controller for this process's cgroup` : probe.problem;
    if (why !== undefined) throw new ConfigError(`config.limits.${limit} cannot be enforced (${why}): ${CGROUPS_FIX}, or remove limits.${limit}`);
  }
}
