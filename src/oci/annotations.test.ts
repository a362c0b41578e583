import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageOf } from '../base/index.js';
import type { PlanInput } from '../mounts/plan.js';
import { containerPlan, readBasePlan, type BasePlan } from './annotations.js';
import { HookError } from './errors.js';

const summary = (annotations?: Record<string, string>) =>
  containerPlan(annotations).mounts.map(
    (m) => `${m.kind}:${m.target}${'options' in m ? ` ${m.options.map((o) => ('flag' in o ? o.key : `${o.key}=${o.value}`)).join(',')}` : ''}`,
  );

describe('containerPlan', () => {
  it('is the default plan without annotations, and ignores other prefixes', () => {
    expect(summary()).toEqual(['proc:proc ', 'sysfs:sys ', 'tmpfs:tmp mode=1777,size=512m']);
    expect(summary({ 'io.kubernetes.pod.name': 'x', 'run.oci.hooks.stderr': '/dev/null' })).toEqual(summary());
  });

  it('chooses mounts with org.mountat.mounts and tunes them', () => {
    expect(
      summary({ 'org.mountat.mounts': 'tmp, proc', 'org.mountat.tmp.size': '64m', 'org.mountat.proc.subset': 'pid', 'org.mountat.proc.hidepid': 'invisible' }),
    ).toEqual(['tmpfs:tmp mode=1777,size=64m', 'proc:proc subset=pid,hidepid=invisible']);
    expect(summary({ 'org.mountat.mounts': '' })).toEqual([]);
  });

  it('takes a whole JSON plan', () => {
    expect(summary({ 'org.mountat.plan': JSON.stringify({ mounts: [{ target: 'dev/shm', kind: 'tmpfs', options: { size: '8m' } }] }) })).toEqual([
      'tmpfs:dev/shm mode=1777,size=8m',
    ]);
  });

  it("applies tunables to an operator's base plan", () => {
    const plan = containerPlan(
      { 'org.mountat.tmp.mode': '0700' },
      { input: { mounts: [{ target: 'tmp', kind: 'tmpfs', options: { size: '2g' } }] }, source: 'plan file /etc/p.json' },
    );
    expect(plan.mounts[0]).toMatchObject({
      kind: 'tmpfs',
      options: [
        { key: 'mode', value: '0700' },
        { key: 'size', value: '2g' },
      ],
    });
  });

  const refusals: Array<[string, Record<string, string>, string]> = [
    ['an unknown mount name', { 'org.mountat.mounts': 'proc,dev' }, 'annotation org.mountat.mounts="proc,dev": unknown mount "dev" (known: proc, sys, tmp)'],
    [
      'a name from Object.prototype',
      { 'org.mountat.mounts': 'toString' },
      'annotation org.mountat.mounts="toString": unknown mount "toString" (known: proc, sys, tmp)',
    ],
    ['a mount named twice', { 'org.mountat.mounts': 'proc,proc' }, 'annotation org.mountat.mounts="proc,proc": a mount is named twice'],
    ['a bad size', { 'org.mountat.tmp.size': 'lots' }, 'annotation org.mountat.tmp.size="lots": expected a value like "64m"'],
    ['an option smuggled in a value', { 'org.mountat.tmp.size': '1m,exec' }, 'annotation org.mountat.tmp.size="1m,exec": expected a value like "64m"'],
    ['a bad hidepid', { 'org.mountat.proc.hidepid': 'yes' }, 'annotation org.mountat.proc.hidepid="yes": expected a value like "invisible"'],
    [
      'a tunable without its mount',
      { 'org.mountat.mounts': 'proc', 'org.mountat.tmp.size': '1m' },
      'annotation org.mountat.tmp.size="1m": the plan has no tmp mount to apply it to',
    ],
    [
      'a misspelt annotation',
      { 'org.mountat.tmp.sise': '1m' },
      'unknown annotation org.mountat.tmp.sise (known: org.mountat.mounts, org.mountat.plan, org.mountat.proc.subset, org.mountat.proc.hidepid, org.mountat.tmp.size, org.mountat.tmp.nr_inodes, org.mountat.tmp.mode)',
    ],
    ['a plan that is not JSON', { 'org.mountat.plan': '{mounts' }, 'annotation org.mountat.plan="{mounts": not JSON'],
    [
      'a plan with a bind',
      { 'org.mountat.plan': JSON.stringify({ mounts: [{ target: 'etc', kind: 'bind', source: '/etc' }] }) },
      'annotation org.mountat.plan: plan.mounts[0] ("etc"): kind: an untrusted plan may not bind host paths (binds come only from the operator\'s plan file)',
    ],
    [
      'a plan with other annotations',
      { 'org.mountat.plan': '{"mounts":[]}', 'org.mountat.tmp.size': '1m' },
      'annotation org.mountat.plan cannot be combined with other org.mountat.* annotations',
    ],
    [
      'a plan that is invalid',
      { 'org.mountat.plan': JSON.stringify({ mounts: [{ target: '/proc', kind: 'proc' }] }) },
      'annotation org.mountat.plan: plan.mounts[0]: target "/proc" is absolute',
    ],
  ];
  it.each(refusals)('refuses %s, naming the annotation', (_name, annotations, message) => {
    expect(() => containerPlan(annotations)).toThrow(HookError);
    expect(() => containerPlan(annotations)).toThrow(message);
  });

  // Annotations are the container creator's: what they bring or change is bounded by the parser.
  const plan = (...mounts: object[]) => ({ 'org.mountat.plan': JSON.stringify({ mounts }) });
  const untrusted: Array<[string, Record<string, string>, string]> = [
    [
      'proc at host-proc',
      plan({ target: 'host-proc', kind: 'proc' }),
      'annotation org.mountat.plan: plan.mounts[0] ("host-proc"): target: an untrusted plan may mount proc only at "proc"',
    ],
    [
      'a second proc beside the first',
      plan({ target: 'proc', kind: 'proc' }, { target: 'p2', kind: 'proc' }),
      'annotation org.mountat.plan: plan.mounts[1] ("p2"): target: an untrusted plan may mount proc only at "proc"',
    ],
    [
      'proc not hardened',
      plan({ target: 'proc', kind: 'proc', hardened: false }),
      'annotation org.mountat.plan: plan.mounts[0] ("proc"): hardened: an untrusted plan may not turn it off',
    ],
    [
      'proc executable',
      plan({ target: 'proc', kind: 'proc', attributes: { noexec: false } }),
      'annotation org.mountat.plan: plan.mounts[0] ("proc"): attributes.noexec: an untrusted plan may not turn off what proc has on by default (nosuid, nodev, noexec)',
    ],
    [
      'sysfs at a/b/sys',
      plan({ target: 'a/b/sys', kind: 'sysfs', attributes: { readOnly: false, nosuid: false, nodev: false } }),
      'annotation org.mountat.plan: plan.mounts[0] ("a/b/sys"): target: an untrusted plan may mount sysfs only at "sys"',
    ],
    [
      'sysfs read-write',
      plan({ target: 'sys', kind: 'sysfs', attributes: { readOnly: false } }),
      'annotation org.mountat.plan: plan.mounts[0] ("sys"): attributes.readOnly: an untrusted plan may not turn off what sysfs has on by default (readOnly, nosuid, nodev, noexec)',
    ],
    [
      'a tmpfs of 100000%',
      plan({ target: 'tmp', kind: 'tmpfs', options: { size: '100000%' } }),
      'annotation org.mountat.plan: plan.mounts[0] ("tmp"): options.size: "100000%" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'a tmpfs with suid',
      plan({ target: 'dev/shm', kind: 'tmpfs', attributes: { nosuid: false } }),
      'annotation org.mountat.plan: plan.mounts[0] ("dev/shm"): attributes.nosuid: an untrusted plan may not turn off what tmpfs has on by default (nosuid, nodev)',
    ],
    [
      'tmp.size over the limit',
      { 'org.mountat.tmp.size': '100000%' },
      'annotation org.mountat.tmp.size: plan.mounts[2] ("tmp"): options.size: "100000%" is over the limit for an untrusted plan (at most 50% or 16g)',
    ],
    [
      'tmp.size 0, unlimited',
      { 'org.mountat.tmp.size': '0' },
      'annotation org.mountat.tmp.size: plan.mounts[2] ("tmp"): options.size: "0" means unlimited to tmpfs; an untrusted plan must stay within 50% or 16g',
    ],
    [
      'tmp.nr_inodes 0, unlimited',
      { 'org.mountat.tmp.nr_inodes': '0' },
      'annotation org.mountat.tmp.nr_inodes: plan.mounts[2] ("tmp"): options.nr_inodes: "0" means unlimited to tmpfs; an untrusted plan must stay within 1m',
    ],
    [
      'tmp.nr_inodes over the limit',
      { 'org.mountat.tmp.nr_inodes': '2m', 'org.mountat.tmp.mode': '0700' },
      'annotations org.mountat.tmp.nr_inodes, org.mountat.tmp.mode: plan.mounts[2] ("tmp"): options.nr_inodes: "2m" is over the limit for an untrusted plan (at most 1m)',
    ],
    [
      'a listed tmp tuned to 0',
      { 'org.mountat.mounts': 'proc,tmp', 'org.mountat.tmp.size': '0%' },
      'annotation org.mountat.tmp.size: plan.mounts[1] ("tmp"): options.size: "0%" means unlimited to tmpfs; an untrusted plan must stay within 50% or 16g',
    ],
  ];
  it.each(untrusted)('bounds what annotations bring: refuses %s', (_name, annotations, message) => {
    expect(() => containerPlan(annotations)).toThrow(HookError);
    expect(() => containerPlan(annotations)).toThrow(message);
    // One line, exactly that one.
    try {
      containerPlan(annotations);
    } catch (error) {
      expect(messageOf(error)).toBe(message);
    }
  });

  const operator = (...mounts: PlanInput['mounts']): BasePlan => ({ input: { mounts }, source: 'plan file /etc/p.json' });
  const allowed: Array<[string, Record<string, string>, BasePlan | undefined, string[]]> = [
    [
      'the default plan tuned within bounds',
      { 'org.mountat.tmp.size': '50%', 'org.mountat.tmp.nr_inodes': '1m', 'org.mountat.proc.hidepid': 'invisible' },
      undefined,
      ['proc:proc hidepid=invisible', 'sysfs:sys ', 'tmpfs:tmp mode=1777,size=50%,nr_inodes=1m'],
    ],
    [
      'a whole plan within bounds',
      plan(
        { target: 'proc', kind: 'proc', options: { subset: 'pid' } },
        { target: 'sys', kind: 'sysfs', attributes: { readOnly: true } },
        { target: 'dev/shm', kind: 'tmpfs', options: { size: '16g' }, attributes: { noexec: true } },
      ),
      undefined,
      ['proc:proc subset=pid', 'sysfs:sys ', 'tmpfs:dev/shm mode=1777,size=16g'],
    ],
    [
      "an operator's bind beside a tuned tmp",
      { 'org.mountat.tmp.size': '64m' },
      operator({ target: 'work', kind: 'bind', source: '/srv/work' }, { target: 'tmp', kind: 'tmpfs' }),
      ['bind:work', 'tmpfs:tmp mode=1777,size=64m'],
    ],
    [
      "an operator's unbounded entries, untouched by annotations",
      { 'org.mountat.tmp.size': '64m' },
      operator(
        { target: 'host-proc', kind: 'proc', hardened: false },
        { target: 'big', kind: 'tmpfs', options: { size: '0' } },
        { target: 'tmp', kind: 'tmpfs' },
      ),
      ['proc:host-proc ', 'tmpfs:big mode=1777,size=0', 'tmpfs:tmp mode=1777,size=64m'],
    ],
  ];
  it.each(allowed)("keeps the operator's trust where no annotation reached: allows %s", (_name, annotations, base, expected) => {
    const plan = containerPlan(annotations, base);
    expect(
      plan.mounts.map(
        (m) => `${m.kind}:${m.target}${'options' in m ? ` ${m.options.map((o) => ('flag' in o ? o.key : `${o.key}=${o.value}`)).join(',')}` : ''}`,
      ),
    ).toEqual(expected);
  });

  it("bounds an operator's entry once an annotation changed it, naming the annotation", () => {
    const base = operator({ target: 'tmp', kind: 'tmpfs', options: { size: '100g' } });
    expect(containerPlan({}, base).mounts).toHaveLength(1);
    expect(() => containerPlan({ 'org.mountat.tmp.mode': '0700' }, base)).toThrow(
      'annotation org.mountat.tmp.mode: plan.mounts[0] ("tmp"): options.size: "100g" is over the limit for an untrusted plan (at most 50% or 16g)',
    );
  });

  it("names the operator's plan file when it is the one at fault", () => {
    // A plan file the schema refuses, read as the hook reads --plan: it is checked once tuned.
    const dir = mkdtempSync(join(tmpdir(), 'mountat-annotations-'));
    try {
      const file = join(dir, 'p.json');
      writeFileSync(file, JSON.stringify({ mounts: [{ target: 'x', kind: 'nfs' }] }));
      expect(() => containerPlan({}, readBasePlan(file))).toThrow(/^plan file \S+\/p\.json: plan\.mounts\[0\]\.kind must be one of/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
