// `mountat mount --root DIR [--plan FILE]`: attach and leave mounted, with a record for `umount`.
import { attach, RecordStore, rootIdentityOf } from '../mounts/index.js';
import { loadPlan, openRoot } from './inputs.js';

export interface MountArgs {
  root: string | undefined;
  plan: string | undefined;
  stateDir: string | undefined;
}

export function mountCommand(args: MountArgs, out: (line: string) => void): number {
  const plan = loadPlan(args.plan);
  using root = openRoot(args.root);
  const store = new RecordStore(args.stateDir);
  const existing = store.load(rootIdentityOf(root));
  if (existing && existing.mounts.length > 0) {
    throw new Error(`root ${args.root} already has mounts recorded in ${store.pathFor(existing.root)}; run \`mountat umount --root ${args.root}\` first`);
  }
  const attachment = attach(root, plan);
  store.save(attachment);
  for (const mount of attachment.mounts) {
    out(`mounted ${mount.kind} on ${mount.target} (mount id ${mount.uniqueMountId ?? mount.mountId})`);
  }
  return 0;
}
