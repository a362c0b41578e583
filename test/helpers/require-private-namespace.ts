// The tests mount for real. They must run in a mount namespace of their own, so a bug can
// never leave a mount on the host: `npm test` records the namespace it started in and runs
// vitest under `unshare --mount --propagation private`. Refuse to start any other way.
import { readlinkSync } from 'node:fs';

export default function requirePrivateNamespace(): void {
  if (process.getuid?.() !== 0) throw new Error('the tests mount for real and need root');
  const outer = process.env.MOUNTAT_OUTER_MNT_NS;
  const ours = readlinkSync('/proc/self/ns/mnt');
  if (!outer || outer === ours) {
    throw new Error('the tests must run in a private mount namespace: use `npm test` (it runs vitest under unshare --mount --propagation private)');
  }
}
