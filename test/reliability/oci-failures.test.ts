// The OCI hook under runc and crun when the container fails at each stage after the hook
// mounted: no mount is ever left on the host. Where the runtime still runs poststop, the bundle
// holds what it held before; crun skips poststop when the container fails before it starts (a
// createContainer hook or the exec failing), so there the mountpoint directories the hook created
// stay behind: empty directories, no mount.
import { describe, expect, it } from 'vitest';
import { listing, makeBundle, removeBundle, runContainer, RUNTIMES, setHooks, standardHooks, type HookSpec } from '../helpers/oci.js';
import { mountTable } from '../helpers/roots.js';

const STAGES: Array<{ name: string; args: string[]; extraHook: { createContainer?: HookSpec; poststart?: HookSpec } }> = [
  { name: 'a later createContainer hook fails', args: ['/bin/true'], extraHook: { createContainer: { path: '/bin/false', args: ['false'] } } },
  { name: 'the process cannot be started', args: ['/nonexistent/program'], extraHook: {} },
  { name: 'a poststart hook fails', args: ['/bin/true'], extraHook: { poststart: { path: '/bin/false', args: ['false'] } } },
];

describe.each(RUNTIMES)('%s: the container fails after the hook mounted', (runtime) => {
  it.each(STAGES)('$name', ({ args, extraHook }) => {
    const testTable = mountTable();
    const bundle = makeBundle({ args: [...args] });
    try {
      const hooks = standardHooks(bundle)!;
      setHooks(bundle, {
        createContainer: [...hooks.createContainer!, ...(extraHook.createContainer ? [extraHook.createContainer] : [])],
        poststop: hooks.poststop,
        ...(extraHook.poststart ? { poststart: [extraHook.poststart] } : {}),
      });
      const before = listing(bundle.dir);
      const run = runContainer(runtime, bundle, `fail-${runtime}-${args.length}-${Object.keys(extraHook).join('')}`);
      // Whatever the runtime made of the failure, no mount of ours is left anywhere.
      expect(run.tableAfter).toBe(run.tableBefore);
      expect(mountTable()).toBe(testTable);
      const after = listing(bundle.dir);
      const extraEntries = after.filter((path) => !before.includes(path));
      if (runtime === 'crun' && !('poststart' in extraHook)) expect(extraEntries).toEqual(['rootfs/proc/', 'rootfs/sys/', 'rootfs/tmp/']);
      else expect(extraEntries).toEqual([]);
    } finally {
      removeBundle(bundle);
    }
  });
});
