import { BorrowedFd } from '../linux/index.js';
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
    [
      'bad atime',
      { mounts: [{ target: 'proc', kind: 'proc', attributes: { atime: 'lazytime' } }] },
      /atime must be one of "relatime", "noatime", "strictatime"/,
    ],
    ['bind without source', { mounts: [{ target: 'src', kind: 'bind' }] }, /a bind needs a source/],
    ['bind with relative source', { mounts: [{ target: 'src', kind: 'bind', source: 'home' }] }, /bind source must be an absolute host path/],
    ['source on a non-bind', { mounts: [{ target: 'proc', kind: 'proc', source: '/proc' }] }, /source is only for kind bind/],
    ['unknown bind option', { mounts: [{ target: 'src', kind: 'bind', source: '/srv', options: { size: '1m' } }] }, /unknown bind option "size"/],
    [
      'duplicate target',
      {
        mounts: [
          { target: 'tmp', kind: 'tmpfs' },
          { target: 'tmp/', kind: 'tmpfs' },
        ],
      },
      /empty component/,
    ],
    [
      'same target twice',
      {
        mounts: [
          { target: 'tmp', kind: 'tmpfs' },
          { target: 'tmp', kind: 'tmpfs' },
        ],
      },
      /repeats the earlier target "tmp"/,
    ],
    [
      'nested under an earlier target',
      {
        mounts: [
          { target: 'dev', kind: 'tmpfs' },
          { target: 'dev/shm', kind: 'tmpfs' },
        ],
      },
      /is nested with the earlier target "dev"/,
    ],
    [
      'covering an earlier target',
      {
        mounts: [
          { target: 'dev/shm', kind: 'tmpfs' },
          { target: 'dev', kind: 'tmpfs' },
        ],
      },
      /is nested with the earlier target "dev\/shm"/,
    ],
    [
      'hardened on a tmpfs',
      { mounts: [{ target: 'tmp', kind: 'tmpfs', hardened: true }] },
      /^plan\.mounts\[0\] \("tmp"\): hardened is only for kinds proc and sysfs$/,
    ],
    [
      'hardened on a bind, even false',
      { mounts: [{ target: 'src', kind: 'bind', source: '/srv', hardened: false }] },
      /^plan\.mounts\[0\] \("src"\): hardened is only for kinds proc and sysfs$/,
    ],
    ['hardened not a boolean', { mounts: [{ target: 'proc', kind: 'proc', hardened: 'yes' }] }, /^plan\.mounts\[0\]\.hardened must be boolean/],
    ['too many mounts', { mounts: Array.from({ length: 65 }, (_, i) => ({ target: `t${i}`, kind: 'tmpfs' })) }, /must NOT have more than 64 items/],
  ];
  it.each(cases)('%s', (_name, input, message) => {
    expect(() => parsePlan(input)).toThrow(PlanError);
    expect(() => parsePlan(input)).toThrow(message);
  });
});

describe("parsePlan fills in the runtimes' defaults", () => {
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

  it.each(['proc', 'sysfs'] as const)('hardens %s unless the entry says hardened: false', (kind) => {
    expect(kind === 'proc' ? DEFAULTS.procHardened : DEFAULTS.sysfsHardened).toBe(true);
    const [byDefault, off, on] = parsePlan({
      mounts: [
        { target: 'x', kind },
        { target: 'a/x', kind, hardened: false },
        { target: 'b/x', kind, hardened: true },
      ],
    }).mounts;
    expect([byDefault, off, on].map((m) => m?.kind === kind && m.hardened)).toEqual([true, false, true]);
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

  it('takes a bind source as a path or as an fd (owned or borrowed, never a bare number), recursive by default', () => {
    const borrowed = new BorrowedFd(7);
    const plan = parsePlan({
      mounts: [
        { target: 'src', kind: 'bind', source: '/srv/src' },
        { target: 'tmp', kind: 'bind', source: { fd: borrowed }, options: { recursive: false } },
      ],
    });
    expect(plan.mounts).toMatchObject([
      { kind: 'bind', source: { path: '/srv/src' }, recursive: true },
      { kind: 'bind', source: { fd: borrowed }, recursive: false },
    ]);
    expect(() => parsePlan({ mounts: [{ target: 'tmp', kind: 'bind', source: { fd: 7 } }] })).toThrow(
      /source fd must be an Fd or a BorrowedFd, not a bare number/,
    );
    expect(() => new BorrowedFd(-1)).toThrow(/not a file descriptor: -1/);
  });
});

describe('parsePlan bounds an untrusted plan, one line per refusal naming entry, field and limit', () => {
  const entry = (e: object) => ({ mounts: [e] });
  const refused: Array<[string, unknown, string]> = [
    [
      'a bind',
      entry({ target: 'etc', kind: 'bind', source: '/etc' }),
      'plan.mounts[0] ("etc"): kind: an untrusted plan may not bind host paths (binds come only from the operator\'s plan file)',
    ],
    [
      'proc elsewhere than proc',
      entry({ target: 'host-proc', kind: 'proc' }),
      'plan.mounts[0] ("host-proc"): target: an untrusted plan may mount proc only at "proc"',
    ],
    ['proc nested', entry({ target: 'a/proc', kind: 'proc' }), 'plan.mounts[0] ("a/proc"): target: an untrusted plan may mount proc only at "proc"'],
    [
      'sysfs elsewhere than sys',
      entry({ target: 'a/b/sys', kind: 'sysfs' }),
      'plan.mounts[0] ("a/b/sys"): target: an untrusted plan may mount sysfs only at "sys"',
    ],
    [
      'sysfs read-write',
      entry({ target: 'sys', kind: 'sysfs', attributes: { readOnly: false } }),
      'plan.mounts[0] ("sys"): attributes.readOnly: an untrusted plan may not turn off what sysfs has on by default (readOnly, nosuid, nodev, noexec)',
    ],
    [
      'sysfs with suid',
      entry({ target: 'sys', kind: 'sysfs', attributes: { nosuid: false } }),
      'plan.mounts[0] ("sys"): attributes.nosuid: an untrusted plan may not turn off what sysfs has on by default (readOnly, nosuid, nodev, noexec)',
    ],
    [
      'proc with devices',
      entry({ target: 'proc', kind: 'proc', attributes: { nodev: false } }),
      'plan.mounts[0] ("proc"): attributes.nodev: an untrusted plan may not turn off what proc has on by default (nosuid, nodev, noexec)',
    ],
    [
      'proc executable',
      entry({ target: 'proc', kind: 'proc', attributes: { noexec: false } }),
      'plan.mounts[0] ("proc"): attributes.noexec: an untrusted plan may not turn off what proc has on by default (nosuid, nodev, noexec)',
    ],
    [
      'tmpfs with suid',
      entry({ target: 'tmp', kind: 'tmpfs', attributes: { nosuid: false } }),
      'plan.mounts[0] ("tmp"): attributes.nosuid: an untrusted plan may not turn off what tmpfs has on by default (nosuid, nodev)',
    ],
    ['proc not hardened', entry({ target: 'proc', kind: 'proc', hardened: false }), 'plan.mounts[0] ("proc"): hardened: an untrusted plan may not turn it off'],
    ['sysfs not hardened', entry({ target: 'sys', kind: 'sysfs', hardened: false }), 'plan.mounts[0] ("sys"): hardened: an untrusted plan may not turn it off'],
    [
      'a tmpfs of 100000%',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '100000%' } }),
      'plan.mounts[0] ("tmp"): options.size: "100000%" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'a tmpfs of 51%',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '51%' } }),
      'plan.mounts[0] ("tmp"): options.size: "51%" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'a tmpfs of 17g',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '17g' } }),
      'plan.mounts[0] ("tmp"): options.size: "17g" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'a tmpfs one byte over',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: 16 * 2 ** 30 + 1 } }),
      'plan.mounts[0] ("tmp"): options.size: "17179869185" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'a size that wraps to 0 in the kernel',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '16e' } }),
      'plan.mounts[0] ("tmp"): options.size: "16e" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'a size of 0 (unlimited)',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '0' } }),
      'plan.mounts[0] ("tmp"): options.size: "0" means unlimited to tmpfs; an untrusted plan must stay within 50% or 16g',
    ],
    [
      'a size of 0%',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '0%' } }),
      'plan.mounts[0] ("tmp"): options.size: "0%" means unlimited to tmpfs; an untrusted plan must stay within 50% or 16g',
    ],
    [
      'a size of the number 0',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: 0 } }),
      'plan.mounts[0] ("tmp"): options.size: "0" means unlimited to tmpfs; an untrusted plan must stay within 50% or 16g',
    ],
    [
      'the default size lifted',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: false } }),
      'plan.mounts[0] ("tmp"): options.size: an untrusted plan must give a limit (at most 50% or 16g), not false',
    ],
    [
      'a hex size',
      entry({ target: 'tmp', kind: 'tmpfs', options: { size: '0x400000000' } }),
      'plan.mounts[0] ("tmp"): options.size: "0x400000000" is not a limit an untrusted plan may give (decimal digits, then k, m, g, t, p or e, or %)',
    ],
    [
      'nr_blocks of 0',
      entry({ target: 'tmp', kind: 'tmpfs', options: { nr_blocks: '0' } }),
      'plan.mounts[0] ("tmp"): options.nr_blocks: "0" means unlimited to tmpfs; an untrusted plan must stay within 256k',
    ],
    [
      'nr_blocks over',
      entry({ target: 'tmp', kind: 'tmpfs', options: { nr_blocks: '1m' } }),
      'plan.mounts[0] ("tmp"): options.nr_blocks: "1m" is over the limit for an untrusted plan (at most 256k)',
    ],
    [
      'nr_blocks in %',
      entry({ target: 'tmp', kind: 'tmpfs', options: { nr_blocks: '10%' } }),
      'plan.mounts[0] ("tmp"): options.nr_blocks: "10%" is not a limit an untrusted plan may give (decimal digits, then k, m, g, t, p or e)',
    ],
    [
      'nr_inodes of 0',
      entry({ target: 'tmp', kind: 'tmpfs', options: { nr_inodes: 0 } }),
      'plan.mounts[0] ("tmp"): options.nr_inodes: "0" means unlimited to tmpfs; an untrusted plan must stay within 1m',
    ],
    [
      'nr_inodes over',
      entry({ target: 'tmp', kind: 'tmpfs', options: { nr_inodes: '1048577' } }),
      'plan.mounts[0] ("tmp"): options.nr_inodes: "1048577" is over the limit for an untrusted plan (at most 1m)',
    ],
    [
      'nr_inodes as a flag',
      entry({ target: 'tmp', kind: 'tmpfs', options: { nr_inodes: true } }),
      'plan.mounts[0] ("tmp"): options.nr_inodes: an untrusted plan must give a limit (at most 1m), not true',
    ],
  ];
  it.each(refused)('refuses %s', (_name, input, message) => {
    let error: unknown;
    try {
      parsePlan(input, 'untrusted');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect(error).toHaveProperty('message', message);
    expect(error).toHaveProperty('entry', 0);
    // The same entry from the operator is applied as written.
    expect(() => parsePlan(input)).not.toThrow();
  });

  const allowed: Array<[string, object]> = [
    ['the default plan', DEFAULTS.plan],
    [
      'proc, sys, tmp tuned',
      {
        mounts: [
          { target: 'proc', kind: 'proc', options: { subset: 'pid', hidepid: 'invisible' } },
          { target: 'sys', kind: 'sysfs' },
          { target: 'tmp', kind: 'tmpfs', options: { size: '64m', nr_inodes: '16k', mode: '0700' } },
        ],
      },
    ],
    [
      'attributes set on, or left to the default',
      {
        mounts: [
          { target: 'proc', kind: 'proc', hardened: true, attributes: { nosuid: true, atime: 'noatime' } },
          { target: 'sys', kind: 'sysfs', hardened: true, attributes: { readOnly: true } },
          { target: 'dev/shm', kind: 'tmpfs', attributes: { noexec: true, nosymfollow: true } },
        ],
      },
    ],
    [
      'tmpfs at the limits',
      {
        mounts: [
          { target: 'a', kind: 'tmpfs', options: { size: '50%' } },
          { target: 'b', kind: 'tmpfs', options: { size: '16g', nr_blocks: '256k', nr_inodes: '1m' } },
          { target: 'c', kind: 'tmpfs', options: { size: 17179869184, nr_inodes: 1 } },
        ],
      },
    ],
    ['nothing at all', { mounts: [] }],
  ];
  it.each(allowed)('allows %s', (_name, input) => {
    expect(parsePlan(structuredClone(input), 'untrusted')).toEqual(parsePlan(structuredClone(input)));
  });

  it("trusts per entry: an operator's bind next to an untrusted tmpfs; an entry without a trust is untrusted", () => {
    const input = {
      mounts: [
        { target: 'work', kind: 'bind', source: '/srv' },
        { target: 'tmp', kind: 'tmpfs', options: { size: '64m' } },
      ],
    };
    expect(parsePlan(input, ['operator', 'untrusted']).mounts.map((m) => m.kind)).toEqual(['bind', 'tmpfs']);
    expect(() => parsePlan(input, ['untrusted', 'operator'])).toThrow(/^plan\.mounts\[0\] \("work"\): kind: an untrusted plan may not bind/);
    expect(() =>
      parsePlan(
        {
          mounts: [
            { target: 'tmp', kind: 'tmpfs' },
            { target: 'etc', kind: 'bind', source: '/etc' },
          ],
        },
        ['operator'],
      ),
    ).toThrow(/^plan\.mounts\[1\] \("etc"\): kind: an untrusted plan may not bind/);
  });

  it('names the entry of a schema error too', () => {
    let error: unknown;
    try {
      parsePlan(
        {
          mounts: [
            { target: 'tmp', kind: 'tmpfs' },
            { target: 'x', kind: 'nfs' },
          ],
        },
        'untrusted',
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect(error).toHaveProperty('entry', 1);
    expect(() => parsePlan({ mounts: 'none' })).toThrow(PlanError);
  });
});
