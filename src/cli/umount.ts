// `mountat umount --root DIR`: tear down what the record says was mounted; a no-op if nothing is.
import { DetachError, detachLines, MountedRoot, RecordStore, rootIdentityOf, rootKey, type DetachReport } from '../mounts/index.js';
import { openRoot } from './inputs.js';

export interface UmountArgs {
  root: string | undefined;
  stateDir: string;
}

export function describeReport(report: DetachReport, out: (line: string) => void): void {
  for (const line of detachLines(report)) out(line);
}

export function umountCommand(args: UmountArgs, out: (line: string) => void): number {
  using root = openRoot(args.root);
  const mounted = MountedRoot.fromRecord(root, new RecordStore(args.stateDir), rootKey(rootIdentityOf(root)));
  if (!mounted) {
    out(`nothing recorded for ${args.root}; nothing to unmount`);
    return 0;
  }
  try {
    describeReport(mounted.tearDown(), out);
  } catch (error) {
    // The record stays, so the operator can try again once the cause is fixed.
    if (error instanceof DetachError) describeReport(error.report, out);
    throw error;
  }
  return 0;
}
