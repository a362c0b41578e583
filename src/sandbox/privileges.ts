// What the caller (the runner, `mountat exec`) must hold to contain its actions, checked once
// before the first: without it every action would fail at the same step, so the caller refuses
// to start and says what to add.
import { MountatError } from '../base/index.js';
import { capabilityMask, type CapabilityName, type CapabilitySets } from '../linux/index.js';
import type { NetworkMode } from './defaults.js';
import type { RootChange } from './root-change.js';
import type { RunAs } from './starter.js';

export interface PrivilegeNeeds {
  runAs: RunAs | undefined;
  network: NetworkMode;
  root: RootChange;
}

/** Each capability the caller needs for these settings, with why. */
export function requiredCapabilities(settings: PrivilegeNeeds): Array<[CapabilityName, string]> {
  const needed: Array<[CapabilityName, string]> = [
    ['CAP_SYS_ADMIN', 'for the mounts, namespaces and pivot_root of every action'],
    ['CAP_SETPCAP', "to reduce each action's capabilities"],
  ];
  if (settings.runAs) needed.push(['CAP_SETUID', 'for runCommandsAs'], ['CAP_SETGID', 'for runCommandsAs']);
  if (settings.root === 'chroot') needed.push(['CAP_SYS_CHROOT', 'to root each action where pivot_root is refused']);
  if (settings.network === 'none') needed.push(['CAP_NET_ADMIN', 'to bring up loopback in each action\'s network namespace (network "none")']);
  return needed;
}

/** Throws a one-line error (kind not-permitted) naming every capability missing from the effective set. */
export function checkPrivileges(settings: PrivilegeNeeds, own: CapabilitySets | undefined, who = 'the runner'): void {
  if (!own) return; // /proc/self/status unreadable: the starter's own errors will name the step
  const missing = requiredCapabilities(settings).filter(([name]) => (own.effective & capabilityMask([name])) === 0n);
  if (missing.length === 0) return;
  throw new MountatError(
    'not-permitted',
    `${who} lacks ${missing.map(([name, why]) => `${name} (${why})`).join(', ')}; run it as root, or add ${missing.length > 1 ? 'them' : 'it'} to its container`,
  );
}
