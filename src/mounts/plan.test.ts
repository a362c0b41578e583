import { describe, expect, it } from 'vitest';
import { DEFAULTS } from './defaults.js';
import { defaultPlan, parsePlan, PlanError } from './plan.js';

describe('parsePlan refuses bad plans before anything is mounted', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', 'proc', /plan must be object/],
    ['no mounts field', {}, /must have required property 'mounts'/],
    ['unknown top-level field', { mounts: [], extra: 1 }, /unknown field "extra"/],
    ['unknown kind', { mounts: [{ target: 'proc', kind: 'procfs' }] }, /plan\.mounts\[0\]\.kind must be one of "proc", "sysfs", "tmpfs", "bind"/],
    ['missing target', { mounts: [{ kind: 'proc' }] }, /required property 'target'/],
    ['empty target', { mounts: [{ target: '', kind: 'proc' }] }, /plan\.mounts\[0\]\.target must NOT have fewer than 1 characters/],
    ['absolute target', { mounts: [{ target: '/proc', kind: 'proc' }] }, /target "\/proc" is absolute; give it relative to the root, e\.g\. "proc"/],
    ['dot-dot target', { mounts: [{ target: '../etc', kind: 'tmpfs' }] }, /contains "\.\."; targets must stay beneath the root/],
    ['dot-dot inside', { mounts: [{ target: 'a/../../b', kind: 'tmpfs' }] }, /contains "\.\."/],
    ['dot component', { mounts: [{ target: './proc', kind: 'proc' }] }, /contains "\."/],
    ['empty component', { mounts: [{ target: 'dev//shm', kind: 'tmpfs' }] }, /has an empty component/],
    ['NUL in target', { mounts: [{ target: 'pr\0oc', kind: 'proc' }] }, /NUL byte/],
    ['over-long component', { mounts: [{ target: 'x'.repeat(256), kind: 'tmpfs' }] }, /component longer than 255 bytes/],
    ['unknown option', { mounts: [{ target: 'tmp', kind: 'tmpfs', options: { sise: '1m' } }] }, /unknown tmpfs option "sise" \(known: size/],
    ['sysfs takes no options', { mounts: [{ target: 'sys', kind: 'sysfs', options: { size: '1m' } }] }, /sysfs takes no options/],
    ['mode as a number', { mounts: [{ target: 'tmp', kind: 'tmpfs', options: { mode: 1777 } }] }, /mode must be an octal string such as "1777"/],
    ['comma in a value', { mounts: [{ target: 'tmp', kind: 'tmpfs', options: { size: '1m,exec' } }] }, /comma or NUL/],
    ['unknown attribute', { mounts: [{ target: 'proc', kind: 'proc', attributes: { rdonly: true } }] }, /attributes has an unknown field "rdonly"/],
    ['bad atime', { mounts: [{ target: 'proc', kind: 'proc', attributes: { atime: 'lazytime' } }] }, /atime must be one of "relatime", "noatime", "strictatime"/],
    ['bind without source', { mounts: [{ target: 'src', kind: 'bind' }] }, /a bind needs a source/],
    ['bind with relative source', { mounts: [{ target: 'src', kind: 'bind', source: 'home' }] }, /bind source must be an absolute host path/],
    ['source on a non-bind', { mounts: [{ target: 'proc', kind: 'proc', source: '/proc' }] }, /source is only for kind bind/],
    ['unknown bind option', { mounts: [{ target: 'src', kind: 'bind', source: '/srv', options: { size: '1m' } }] }, /unknown bind option "size"/],
    ['duplicate target', { mounts: [{ target: 'tmp', kind: 'tmpfs' }, { target: 'tmp/', kind: 'tmpfs' }] }, /empty component/],
    ['same target twice', { mounts: [{ target: 'tmp', kind: 'tmpfs' }, { target: 'tmp', kind: 'tmpfs' }] }, /repeats the earlier target "tmp"/],
    ['nested under an earlier target', { mounts: [{ target: 'dev', kind: 'tmpfs' }, { target: 'dev/shm', kind: 'tmpfs' }] }, /is nested with the earlier target "dev"/],
    ['covering an earlier target', { mounts: [{ target: 'dev/shm', kind: 'tmpfs' }, { target: 'dev', kind: 'tmpfs' }] }, /is nested with the earlier target "dev\/shm"/],
    ['hardened on a tmpfs', { mounts: [{ target: 'tmp', kind: 'tmpfs', hardened: true }] }, /^plan\.mounts\[0\] \("tmp"\): hardened is only for kind proc$/],
    ['hardened on a sysfs, even false', { mounts: [{ target: 'sys', kind: 'sysfs', hardened: false }] }, /^plan\.mounts\[0\] \("sys"\): hardened is only for kind proc$/],
    ['hardened on a bind', { mounts: [{ target: 'src', kind: 'bind', source: '/srv', hardened: true }] }, /^plan\.mounts\[0\] \("src"\): hardened is only for kind proc$/],
    ['hardened not a boolean', { mounts: [{ target: 'proc', kind: 'proc', hardened: 'yes' }] }, /^plan\.mounts\[0\]\.hardened must be boolean/],
    ['too many mounts', { mounts: Array.from({ length: 65 }, (_, i) => ({ target: `t${i}`, kind: 'tmpfs' })) }, /must NOT have more than 64 items/],
  ];
  it.each(cases)('%s', (_name, input, message) => {
    expect(() => parsePlan(input)).toThrow(PlanError);
    expect(() => parsePlan(input)).toThrow(message);
  });
});

describe('parsePlan fills in the runtimes\' defaults', () => {
  it('gives the default plan proc, read-only sysfs and a capped tmpfs', () => {
    const plan = defaultPlan();
    expect(plan.mounts.map((m) => [m.kind, m.target])).toEqual([
      ['proc', 'proc'],
      ['sysfs', 'sys'],
      ['tmpfs', 'tmp'],
    ]);
    const [proc, sys, tmp] = plan.mounts;
    expect(proc?.attributes).toMatchObject({ readOnly: false, nosuid: true, nodev: true, noexec: true });
    expect(sys?.attributes).toMatchObject({ readOnly: true, nosuid: true, nodev: true, noexec: true });
    expect(tmp?.attributes).toMatchObject({ readOnly: false, nosuid: true, nodev: true, noexec: false });
    expect(tmp?.kind === 'tmpfs' && tmp.options).toEqual([
      { key: 'mode', value: '1777' },
      { key: 'size', value: DEFAULTS.options.tmpfs.size },
    ]);
  });

  it('hardens proc unless the entry says hardened: false', () => {
    expect(DEFAULTS.procHardened).toBe(true);
    const [byDefault, off, on] = parsePlan({
      mounts: [
        { target: 'proc', kind: 'proc' },
        { target: 'a/proc', kind: 'proc', hardened: false },
        { target: 'b/proc', kind: 'proc', hardened: true },
      ],
    }).mounts;
    expect([byDefault, off, on].map((m) => m?.kind === 'proc' && m.hardened)).toEqual([true, false, true]);
  });

  it('lets an entry override single attributes and options, keeping the rest', () => {
    const plan = parsePlan({
      mounts: [{ target: 'dev/shm', kind: 'tmpfs', options: { size: 65536, inode64: true, huge: false }, attributes: { noexec: true, atime: 'noatime' } }],
    });
    const [shm] = plan.mounts;
    expect(shm?.target).toBe('dev/shm');
    expect(shm?.attributes).toMatchObject({ nosuid: true, nodev: true, noexec: true, atime: 'noatime' });
    expect(shm?.kind === 'tmpfs' && shm.options).toEqual([
      { key: 'mode', value: '1777' },
      { key: 'size', value: '65536' },
      { key: 'inode64', flag: true },
    ]);
  });

  it('accepts proc options and leaves their values to the kernel', () => {
    const [proc] = parsePlan({ mounts: [{ target: 'proc', kind: 'proc', options: { subset: 'pid', hidepid: 'bogus' } }] }).mounts;
    expect(proc?.kind === 'proc' && proc.options).toEqual([
      { key: 'subset', value: 'pid' },
      { key: 'hidepid', value: 'bogus' },
    ]);
  });

  it('takes a bind source as a path or as an fd, recursive by default', () => {
    const plan = parsePlan({
      mounts: [
        { target: 'src', kind: 'bind', source: '/srv/src' },
        { target: 'tmp', kind: 'bind', source: { fd: 7 }, options: { recursive: false } },
      ],
    });
    expect(plan.mounts).toMatchObject([
      { kind: 'bind', source: { path: '/srv/src' }, recursive: true },
      { kind: 'bind', source: { fd: 7 }, recursive: false },
    ]);
    expect(() => parsePlan({ mounts: [{ target: 'tmp', kind: 'bind', source: { fd: -1 } }] })).toThrow(/source fd must be a non-negative integer/);
  });
});
