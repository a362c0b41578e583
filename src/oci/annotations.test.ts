import { describe, expect, it } from 'vitest';
import { containerPlan } from './annotations.js';
import { HookError } from './errors.js';

const summary = (annotations?: Record<string, string>) =>
  containerPlan(annotations).mounts.map((m) => `${m.kind}:${m.target}${'options' in m ? ` ${m.options.map((o) => ('flag' in o ? o.key : `${o.key}=${o.value}`)).join(',')}` : ''}`);

describe('containerPlan', () => {
  it('is the default plan without annotations, and ignores other prefixes', () => {
    expect(summary()).toEqual(['proc:proc ', 'sysfs:sys ', 'tmpfs:tmp mode=1777,size=512m']);
    expect(summary({ 'io.kubernetes.pod.name': 'x', 'run.oci.hooks.stderr': '/dev/null' })).toEqual(summary());
  });

  it('chooses mounts with org.mountat.mounts and tunes them', () => {
    expect(summary({ 'org.mountat.mounts': 'tmp, proc', 'org.mountat.tmp.size': '64m', 'org.mountat.proc.subset': 'pid', 'org.mountat.proc.hidepid': 'invisible' })).toEqual([
      'tmpfs:tmp mode=1777,size=64m',
      'proc:proc subset=pid,hidepid=invisible',
    ]);
    expect(summary({ 'org.mountat.mounts': '' })).toEqual([]);
  });

  it('takes a whole JSON plan', () => {
    expect(summary({ 'org.mountat.plan': JSON.stringify({ mounts: [{ target: 'dev/shm', kind: 'tmpfs', options: { size: '8m' } }] }) })).toEqual([
      'tmpfs:dev/shm mode=1777,size=8m',
    ]);
  });

  it('applies tunables to an operator\'s base plan', () => {
    const plan = containerPlan({ 'org.mountat.tmp.mode': '0700' }, { input: { mounts: [{ target: 'tmp', kind: 'tmpfs', options: { size: '2g' } }] }, source: 'plan file /etc/p.json' });
    expect(plan.mounts[0]).toMatchObject({ kind: 'tmpfs', options: [{ key: 'mode', value: '0700' }, { key: 'size', value: '2g' }] });
  });

  const refusals: Array<[string, Record<string, string>, string]> = [
    ['an unknown mount name', { 'org.mountat.mounts': 'proc,dev' }, 'annotation org.mountat.mounts="proc,dev": unknown mount "dev" (known: proc, sys, tmp)'],
    ['a name from Object.prototype', { 'org.mountat.mounts': 'toString' }, 'annotation org.mountat.mounts="toString": unknown mount "toString" (known: proc, sys, tmp)'],
    ['a mount named twice', { 'org.mountat.mounts': 'proc,proc' }, 'annotation org.mountat.mounts="proc,proc": a mount is named twice'],
    ['a bad size', { 'org.mountat.tmp.size': 'lots' }, 'annotation org.mountat.tmp.size="lots": expected a value like "64m"'],
    ['an option smuggled in a value', { 'org.mountat.tmp.size': '1m,exec' }, 'annotation org.mountat.tmp.size="1m,exec": expected a value like "64m"'],
    ['a bad hidepid', { 'org.mountat.proc.hidepid': 'yes' }, 'annotation org.mountat.proc.hidepid="yes": expected a value like "invisible"'],
    ['a tunable without its mount', { 'org.mountat.mounts': 'proc', 'org.mountat.tmp.size': '1m' }, 'annotation org.mountat.tmp.size="1m": the plan has no tmp mount to apply it to'],
    ['a misspelt annotation', { 'org.mountat.tmp.sise': '1m' }, 'unknown annotation org.mountat.tmp.sise (known: org.mountat.mounts, org.mountat.plan, org.mountat.proc.subset, org.mountat.proc.hidepid, org.mountat.tmp.size, org.mountat.tmp.nr_inodes, org.mountat.tmp.mode)'],
    ['a plan that is not JSON', { 'org.mountat.plan': '{mounts' }, 'annotation org.mountat.plan="{mounts": not JSON'],
    ['a plan with a bind', { 'org.mountat.plan': JSON.stringify({ mounts: [{ target: 'etc', kind: 'bind', source: '/etc' }] }) }, 'bind mounts cannot be requested by annotation'],
    ['a plan with other annotations', { 'org.mountat.plan': '{"mounts":[]}', 'org.mountat.tmp.size': '1m' }, 'annotation org.mountat.plan cannot be combined with other org.mountat.* annotations'],
    ['a plan that is invalid', { 'org.mountat.plan': JSON.stringify({ mounts: [{ target: '/proc', kind: 'proc' }] }) }, 'annotation org.mountat.plan: plan.mounts[0]: target "/proc" is absolute'],
  ];
  it.each(refusals)('refuses %s, naming the annotation', (_name, annotations, message) => {
    expect(() => containerPlan(annotations)).toThrow(HookError);
    expect(() => containerPlan(annotations)).toThrow(message);
  });

  it('names the operator\'s plan file when it is the one at fault', () => {
    expect(() => containerPlan({}, { input: { mounts: [{ target: 'x', kind: 'nfs' }] } as never, source: 'plan file /etc/p.json' })).toThrow(
      /^plan file \/etc\/p\.json: plan\.mounts\[0\]\.kind must be one of/,
    );
  });
});
