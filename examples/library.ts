// mountat as a library: mount the default plan (proc, sys read-only, tmp) beneath a temporary
// root known by its fd, list what was mounted, and tear it down. Run it as root, best in a mount
// namespace of its own: `unshare --mount --propagation private node library.js`.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPlan, describeError, KINDS, kindOf, mountRecorded, openRoot, RecordStore, rootIdentityOf, rootKey } from 'mountat';

function mountListTearDown(rootPath: string, records: RecordStore): void {
  // The only host path the engine is given; beneath it, everything is resolved from the fd.
  using root = openRoot(rootPath);
  // All or nothing: on failure nothing is mounted and no record is left; only when the rollback
  // itself failed is there a `leftover`, the owner of what is left, whose tearDown() retries. The
  // record is what another process (or this one, restarted after a crash) tears down from:
  // MountedRoot.fromRecord(root, records, key)?.tearDown().
  const { mounted, error, leftover } = mountRecorded(root, defaultPlan(), { records, key: rootKey(rootIdentityOf(root)), existing: 'refuse' });
  if (error) {
    leftover?.tearDown();
    throw error;
  }
  try {
    for (const mount of mounted.attachment.mounts) {
      const covers = mount.covers ? ` (${mount.covers.length} covered)` : '';
      console.log(`mounted ${mount.kind} on /${mount.target}${covers}`);
    }
  } finally {
    // Detaches only what the record proves ours, removes the directories attach created, then the
    // record; a DetachError (after trying everything) keeps the record for a retry.
    const report = mounted.tearDown();
    console.log(`unmounted ${report.detached.map((target) => `/${target}`).join(', ')}`);
    console.log(`removed ${report.removed.map((path) => `/${path}`).join(', ')}`);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'mountat-example-'));
const root = join(dir, 'root');
mkdirSync(root);
try {
  mountListTearDown(root, new RecordStore(join(dir, 'state')));
  // Only once nothing is mounted beneath it: a failure leaves the directory and its record.
  rmSync(dir, { recursive: true });
} catch (error) {
  // One line for a person, and an exit code from the error's kind (not-permitted: run it as root).
  console.error(`library example: ${describeError(error)} (${kindOf(error)}; left ${dir})`);
  process.exitCode = KINDS[kindOf(error)].exitCode;
}
