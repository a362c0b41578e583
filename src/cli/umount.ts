// `mountat umount --root DIR`: tear down what the record says was mounted; a no-op if nothing is.
import { DetachError, MountedRoot, RecordStore, rootIdentityOf, rootKey, type DetachReport } from '../mounts/index.js';
import { openRoot } from './inputs.js';

export interface UmountArgs {
  root: string | undefined;
  stateDir: string;
}

export function describeReport(report: DetachReport, out: (line: string) => void): void {
  for (const target of report.detached) out(`unmounted ${target}`);
  for (const target of report.notMounted) out(`not mounted any more: ${target}`);
  for (const stacked of report.stacked) out(`also removed a mount stacked on ours: ${stacked}`);
  for (const path of report.removed) out(`removed directory ${path}`);
  for (const kept of report.kept) if (kept.reason !== 'already gone') out(`kept directory ${kept.path}: ${kept.reason}`);
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
