import { describe, expect, it } from 'vitest';
import { messageOf } from '../base/index.js';
import { containerPlan } from './annotations.js';
import { HookError } from './errors.js';
import { specForMountat } from './precreate.js';

// The mounts podman 4.3.1 puts into every container's spec (as seen on stdin of a precreate hook).
const PODMAN_MOUNTS = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/etc/hosts', type: 'bind', source: '/run/containers/c1/userdata/hosts', options: ['bind', 'rprivate'] },
  { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
];

function podmanSpec(annotations: Record<string, string>, extra: { mounts?: object[]; sysctl?: Record<string, string> } = {}): string {
  return JSON.stringify({
    ociVersion: '1.0.2-dev',
    mounts: [...PODMAN_MOUNTS, ...(extra.mounts ?? [])],
    annotations: { 'io.container.manager': 'libpod', ...annotations },
    linux: {
      sysctl: extra.sysctl ?? { 'net.ipv4.ping_group_range': '0 0' },
      maskedPaths: ['/proc/kcore', '/sys/firmware'],
      readonlyPaths: ['/proc/sys'],
    },
  });
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** The spec's mounts' destinations, in order. */
function destinations(text: string): unknown[] {
  const spec: unknown = JSON.parse(text);
  if (!isObject(spec) || !Array.isArray(spec.mounts)) throw new Error(`not a spec with mounts: ${text}`);
  return spec.mounts.map((mount: unknown) => (isObject(mount) ? mount.destination : undefined));
}
const others = ['/dev', '/dev/pts', '/dev/mqueue', '/etc/hosts'];

describe('specForMountat', () => {
  const removals: Array<[string, Record<string, string>, string[]]> = [
    ["proc, sys and tmp asked for: podman's proc, sysfs and cgroup go", { 'org.mountat.mounts': 'proc,sys,tmp' }, others],
    [
      "proc only: podman's sysfs and cgroup stay",
      { 'org.mountat.mounts': 'proc' },
      ['/dev', '/sys', '/dev/pts', '/dev/mqueue', '/etc/hosts', '/sys/fs/cgroup'],
    ],
    ["sys only: podman's proc stays", { 'org.mountat.mounts': 'sys, tmp' }, ['/proc', ...others]],
    ['no mounts annotation: the default plan, which has proc and sys', { 'org.mountat.tmp.size': '64m' }, others],
    [
      'a whole plan with proc',
      { 'org.mountat.plan': JSON.stringify({ mounts: [{ target: 'proc', kind: 'proc' }] }) },
      ['/dev', '/sys', '/dev/pts', '/dev/mqueue', '/etc/hosts', '/sys/fs/cgroup'],
    ],
  ];
  it.each(removals)('%s', (_, annotations, kept) => {
    expect(destinations(specForMountat(podmanSpec(annotations)))).toEqual(kept);
  });

  it('keeps everything else of the spec, masked and read-only paths included', () => {
    const out: unknown = JSON.parse(specForMountat(podmanSpec({ 'org.mountat.mounts': 'proc,sys' })));
    expect(out).toHaveProperty('linux.maskedPaths', ['/proc/kcore', '/sys/firmware']);
    expect(out).toHaveProperty('linux.readonlyPaths', ['/proc/sys']);
    expect(out).toHaveProperty('annotations', { 'io.container.manager': 'libpod', 'org.mountat.mounts': 'proc,sys' });
    expect(out).toHaveProperty(['mounts', 0], PODMAN_MOUNTS[1]);
  });

  it("drops podman's default sysctl only when mountat makes proc", () => {
    const withProc: unknown = JSON.parse(specForMountat(podmanSpec({ 'org.mountat.mounts': 'proc' })));
    expect(withProc).toHaveProperty('linux');
    expect(withProc).not.toHaveProperty('linux.sysctl');
    const withoutProc: unknown = JSON.parse(specForMountat(podmanSpec({ 'org.mountat.mounts': 'sys' })));
    expect(withoutProc).toHaveProperty('linux.sysctl', { 'net.ipv4.ping_group_range': '0 0' });
  });

  const unchanged: Array<[string, string]> = [
    ['no org.mountat.* annotation', podmanSpec({ 'org.example.mounts': 'proc' })],
    ['only tmp asked for', podmanSpec({ 'org.mountat.mounts': 'tmp' })],
    ['formatting of its own (spaces, key order)', `{ "mounts" : [ {"type":"proc","destination":"/proc"} ],\n  "annotations": {"a": "b"} }\n`],
    ['no annotations at all', '{"mounts":[{"destination":"/proc","type":"proc"}]}'],
    // The createContainer hook refuses these with the same line, where the runtime shows it.
    ['a bad annotation', podmanSpec({ 'org.mountat.mounts': 'proc,bogus' })],
    ['an unknown annotation', podmanSpec({ 'org.mountat.mount': 'proc' })],
    ['a tmp size over the bound for annotations', podmanSpec({ 'org.mountat.tmp.size': '99t' })],
  ];
  it.each(unchanged)('passes the spec through byte for byte: %s', (_, text) => {
    expect(specForMountat(text)).toBe(text);
  });

  const refusals: Array<[string, string, string]> = [
    ['empty input', '', 'precreate: no config.json on stdin (podman writes the candidate spec there)'],
    ['not JSON', '{"mounts": [', 'precreate: the config.json on stdin is not JSON: '],
    ['not an object', '[]', 'precreate: the config.json on stdin is not a JSON object'],
    ['no mounts array', '{"annotations":{}}', 'precreate: config.json has no mounts array (mounts: missing)'],
    ['mounts not an array', '{"mounts":{}}', 'precreate: config.json has no mounts array (mounts: {})'],
    ['a mount without destination', '{"mounts":[{"type":"proc"}]}', 'precreate: config.json mounts[0] has no destination string'],
    ['annotations not an object', '{"mounts":[],"annotations":"x"}', 'precreate: config.json annotations is not an object'],
    [
      'a volume beneath /sys',
      podmanSpec({ 'org.mountat.mounts': 'sys' }, { mounts: [{ destination: '/sys/kernel/debug', type: 'bind', source: '/sys/kernel/debug' }] }),
      'precreate: mount /sys/kernel/debug (bind from /sys/kernel/debug) lies at or beneath /sys, where mountat mounts after the runtime and would hide it; remove it or leave sys out of the org.mountat.* annotations',
    ],
    [
      'a tmpfs at /proc/ (trailing slash)',
      podmanSpec({ 'org.mountat.mounts': 'proc' }, { mounts: [{ destination: '/proc/', type: 'tmpfs', source: 'tmpfs' }] }),
      'precreate: mount /proc/ (tmpfs from tmpfs) lies at or beneath /proc',
    ],
    [
      'a sysctl someone asked for',
      podmanSpec({ 'org.mountat.mounts': 'proc' }, { sysctl: { 'net.ipv4.ping_group_range': '0 0', 'net.core.somaxconn': '1024' } }),
      'precreate: linux.sysctl net.core.somaxconn="1024": runc writes sysctls into /proc/sys after the createContainer hook, where mountat\'s proc is already read-only',
    ],
  ];
  it.each(refusals)('refuses %s in one line', (_, text, message) => {
    let thrown: unknown;
    try {
      specForMountat(text);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(HookError);
    expect(messageOf(thrown).startsWith(message)).toBe(true);
    expect(messageOf(thrown)).not.toContain('\n');
    expect(thrown).toHaveProperty('exitCode', 1);
  });

  it('refuses what the createContainer hook would: the same annotations are bad for both', () => {
    expect(() => containerPlan({ 'org.mountat.tmp.size': '99t' })).toThrow(/annotation org\.mountat\.tmp\.size/);
  });

  it('asks for the same plan as the createContainer hook given the same --plan file', () => {
    const base = { input: { mounts: [{ target: 'tmp', kind: 'tmpfs' as const }] }, source: 'plan file /etc/p.json' };
    const text = podmanSpec({ 'org.mountat.tmp.size': '8m' });
    expect(specForMountat(text, base)).toBe(text);
  });
});
