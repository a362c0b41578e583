// How an action is rooted at its input root. pivot_root leaves nothing of the caller's filesystem in
// the action's mount namespace; where a seccomp profile refuses pivot_root (Docker's default
// profile does, even with CAP_SYS_ADMIN), the starter mounts the root over "/" and chroots into
// it. The old root then stays beneath, reachable only by a chroot of the action's own (it lacks
// CAP_SYS_CHROOT, and the kernel refuses a chrooted process a user namespace, where it would have
// it) or by moving mounts (CAP_SYS_ADMIN). So chroot is used only when the action holds neither.
import { MountatError } from '../base/index.js';
import { capabilityMask, capabilityNames } from '../linux/index.js';

export type RootChange = 'pivot' | 'chroot' | 'none';

/** What would let an action out of a chroot over the old root. */
const OPENS_A_CHROOT = capabilityMask(['CAP_SYS_CHROOT', 'CAP_SYS_ADMIN']);

/** Neither root change is safe here (kind precondition: the settings are fine, this place is not). */
export class RootChangeError extends MountatError {
  constructor(message: string) {
    super('precondition', message);
    this.name = 'RootChangeError';
  }
}

/**
 * The root change for actions keeping `capabilities` (a mask), where pivot_root is `pivotRoot`;
 * throws a one-line RootChangeError where neither is safe.
 */
export function chooseRootChange(rooted: boolean, pivotRoot: 'allowed' | 'refused', capabilities: bigint): RootChange {
  if (!rooted) return 'none';
  if (pivotRoot === 'allowed') return 'pivot';
  const opening = capabilityNames(capabilities & OPENS_A_CHROOT);
  if (opening.length > 0) {
    throw new RootChangeError(
      `pivot_root is refused here (a seccomp profile?), and a chroot is no barrier to actions holding ${opening.join(' and ')}: allow pivot_root, or do not grant ${opening.length > 1 ? 'them' : 'it'}`,
    );
  }
  return 'chroot';
}
