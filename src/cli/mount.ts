// `mountat mount --root DIR [--plan FILE]`: attach and leave mounted, with a record for `umount`.
import { attach, RecordStore, rootIdentityOf, rootKey } from '../mounts/index.js';
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
  const key = rootKey(rootIdentityOf(root));
  const existing = store.load(key);
  if (existing && existing.mounts.length > 0) {
    throw new Error(`root ${args.root} already has mounts recorded in ${store.pathFor(key)}; run \`mountat umount --root ${args.root}\` first`);
  }
  const attachment = attach(root, plan);
  store.save(key, attachment);
  for (const mount of attachment.mounts) {
    out(`mounted ${mount.kind} on ${mount.target} (mount id ${mount.uniqueMountId ?? mount.mountId})`);
  }
  return 0;
}
