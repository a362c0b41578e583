// `mountat mount --root DIR [--plan FILE]`: attach and leave mounted, with a record for `umount`.
import { MountatError } from '../base/index.js';
import { AlreadyRecordedError, mountRecorded, RecordStore, rootIdentityOf, rootKey, type MountAttempt, type Plan } from '../mounts/index.js';
import type { Fd } from '../linux/index.js';
import { loadPlan, openRoot } from './inputs.js';

export interface MountArgs {
  root: string | undefined;
  plan: string | undefined;
  stateDir: string;
}

/**
 * The owner of the plan mounted beneath `root`, recorded under the root's key; refused if that key
 * already records mounts (`mountat mount` and `mountat exec` share it: neither may overwrite, nor
 * later remove, the other's record).
 */
export function mountRoot(root: Fd, rootArg: string | undefined, plan: Plan, store: RecordStore, procPidns?: Fd): MountAttempt {
  try {
    return mountRecorded(root, plan, { records: store, key: rootKey(rootIdentityOf(root)), existing: 'refuse', procPidns });
  } catch (error) {
    if (!(error instanceof AlreadyRecordedError)) throw error;
    throw new MountatError(
      'precondition',
      `root ${rootArg} already has mounts recorded in ${error.recordPath}; run \`mountat umount --root ${rootArg}\` first`,
      { cause: error },
    );
  }
}

export function mountCommand(args: MountArgs, out: (line: string) => void): number {
  const plan = loadPlan(args.plan);
  using root = openRoot(args.root);
  // A failure leaves nothing mounted, or (a failed rollback) what is left recorded for `umount`.
  const { mounted, error } = mountRoot(root, args.root, plan, new RecordStore(args.stateDir));
  if (error) throw error;
  for (const mount of mounted.attachment.mounts) {
    out(`mounted ${mount.kind} on ${mount.target} (mount id ${mount.uniqueMountId ?? mount.mountId})`);
  }
  return 0;
}
