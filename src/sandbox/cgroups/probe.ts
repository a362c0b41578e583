// What this process can do with cgroups, for doctor and the runner's start-up message: the layout,
// where each controller is, and whether a cgroup can be made below the parent in each tree used
// (made and removed at once; nothing moved, no controller enabled).
import { mkdirSync, rmdirSync } from 'node:fs';
import { describeError } from '../../base/index.js';
import { directoryOf, layoutKind, placeController, readLayout, type Hierarchy, type Layout } from './hierarchies.js';
import type { CgroupProbe, ControllerName } from './types.js';

const CONTROLLERS: ControllerName[] = ['pids', 'memory', 'cpu', 'io'];

export function probeCgroups(parent?: string, layout: Layout = readLayout()): CgroupProbe {
  const where = (c: ControllerName) => {
    const h = placeController(layout, c);
    return h ? (`v${h.version}` as const) : null;
  };
  const controllers: CgroupProbe['controllers'] = { pids: where('pids'), memory: where('memory'), cpu: where('cpu'), io: where('io') };
  const used = new Set<Hierarchy>();
  if (layout.v2) used.add(layout.v2);
  for (const c of CONTROLLERS) {
    const h = placeController(layout, c);
    if (h) used.add(h);
  }
  const parents: Record<string, string> = {};
  const problems: string[] = [];
  if (used.size === 0) problems.push('no cgroup filesystem is mounted where this process can see it');
  for (const h of used) {
    const directory = directoryOf(h, parent ?? h.ownPath);
    if (directory === undefined) {
      problems.push(`${h.name}: the cgroup ${parent ?? h.ownPath} is not in ${h.mount}`);
      continue;
    }
    parents[h.name] = directory;
    const probe = `${directory}/mountat-probe-${process.pid}`;
    try {
      mkdirSync(probe);
      rmdirSync(probe);
    } catch (error) {
      problems.push(`${h.name}: cannot make a cgroup in ${directory}: ${describeError(error)}`);
    }
  }
  return { layout: layoutKind(layout), controllers, parents, problem: problems.length > 0 ? problems.join('; ') : undefined };
}
