import { describe, expect, it } from 'vitest';
import { directoryOf, layoutKind, parseLayout, placeController } from './hierarchies.js';

// As this project's CI machines show them (Debian 12's hybrid layout): controllers on v1, a v2 tree beside.
const HYBRID_CGROUP = `9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
7:blkio:/
0::/
`;
const HYBRID_MOUNTINFO = `30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 30 0:35 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

describe('the cgroup layout', () => {
  it('places each controller on v1 on a hybrid host, with the v2 tree beside them', () => {
    const layout = parseLayout(HYBRID_CGROUP, HYBRID_MOUNTINFO, () => ['hugetlb']);
    expect(layoutKind(layout)).toBe('hybrid');
    expect(layout.v2?.mount).toBe('/sys/fs/cgroup/unified');
    expect(placeController(layout, 'memory')?.mount).toBe('/sys/fs/cgroup/memory');
    expect(directoryOf(placeController(layout, 'memory')!, '/process_api/abc')).toBe('/sys/fs/cgroup/memory/process_api/abc');
    expect(placeController(layout, 'io')?.name).toBe('blkio');
    expect(placeController(layout, 'pids')?.version).toBe(1);
  });

  it('places every controller in the v2 tree where it is the only one, as a Kubernetes node has it', () => {
    const layout = parseLayout('0::/kubepods/pod1/c1\n', '50 40 0:40 /kubepods/pod1/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', () => [
      'cpu',
      'io',
      'memory',
      'pids',
    ]);
    expect(layoutKind(layout)).toBe('v2');
    const pids = placeController(layout, 'pids')!;
    expect(pids.version).toBe(2);
    // A container without a cgroup namespace sees its own cgroup at the mount's root.
    expect(directoryOf(pids, '/kubepods/pod1/c1')).toBe('/sys/fs/cgroup');
    expect(directoryOf(pids, '/kubepods/pod1/c1/x')).toBe('/sys/fs/cgroup/x');
    expect(directoryOf(pids, '/elsewhere')).toBeUndefined();
  });

  it('falls back to v1 for a controller the v2 cgroup does not have, and knows when there is none', () => {
    const layout = parseLayout('0::/\n', '40 30 0:36 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', () => ['memory']);
    expect(placeController(layout, 'memory')?.version).toBe(2);
    expect(placeController(layout, 'pids')).toBeUndefined();
    expect(layoutKind(parseLayout('', '', () => []))).toBe('none');
  });

  it('reads mount points with escaped characters', () => {
    const layout = parseLayout('0::/\n', '40 30 0:36 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n', () => []);
    expect(layout.v2?.mount).toBe('/sys/fs/my cgroup');
  });
});
