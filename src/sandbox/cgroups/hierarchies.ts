// Where this process's cgroups are: the v2 tree and every v1 hierarchy, from /proc/self/cgroup
// (which cgroup it is in) and /proc/self/mountinfo (where each hierarchy is mounted, and from
// which of its cgroups: a container without a cgroup namespace sees only a subtree). Kubernetes
// nodes are v2 only; hosts with the hybrid layout (Debian 12 as installed on this project's CI
// machines) keep pids, memory and cpu on v1 beside a v2 tree with none of them.
import { existsSync, readFileSync } from 'node:fs';
import type { ControllerName } from './types.js';

export interface Hierarchy {
  /** "unified" for the v2 tree; a v1 hierarchy by its controllers ("memory", "cpu,cpuacct"). */
  name: string;
  version: 1 | 2;
  /** Where it is mounted. */
  mount: string;
  /** This process's cgroup in it, as /proc/self/cgroup names it ("/" in a cgroup namespace's root). */
  ownPath: string;
  /** v1: the hierarchy's controllers; v2: those this process's cgroup has (cgroup.controllers). */
  controllers: string[];
  /** The cgroup's path relative to the mount's root: what to join to `mount` for its directory. */
  mountRoot: string;
}

export interface Layout {
  v2: Hierarchy | undefined;
  v1: Hierarchy[];
}

/** The directory of the cgroup `path` (as /proc/self/cgroup names cgroups) in `h`; undefined where its mount does not show it. */
export function directoryOf(h: Hierarchy, path: string): string | undefined {
  const root = h.mountRoot === '/' ? '' : h.mountRoot;
  if (path !== root && !path.startsWith(`${root}/`) && root !== '') return undefined;
  const rest = path.slice(root.length).replace(/^\/+/, '');
  return rest === '' ? h.mount : `${h.mount}/${rest}`;
}

/** Octal escapes (\040 for a space) as the kernel writes mountinfo. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The v1 name of a controller: v2's io is v1's blkio. */
export function v1Name(controller: ControllerName | 'cpuacct'): string {
  return controller === 'io' ? 'blkio' : controller;
}

/**
 * The layout, from the two files' text. `v2Controllers` reads cgroup.controllers of a directory
 * of the v2 tree (a parameter so that the parsing is testable without one).
 */
export function parseLayout(procSelfCgroup: string, mountinfo: string, v2Controllers: (directory: string) => string[]): Layout {
  const own = new Map<string, string>(); // "" for v2, else the v1 line's controller list
  for (const line of procSelfCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (match) own.set(match[1] === '0' && match[2] === '' ? '' : match[2]!, match[3]!);
  }
  const layout: Layout = { v2: undefined, v1: [] };
  const seen = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields.length < dash + 4) continue;
    const fsType = fields[dash + 1]!;
    const mountRoot = unescape(fields[3]!);
    const mount = unescape(fields[4]!);
    if (fsType === 'cgroup2') {
      const ownPath = own.get('');
      if (ownPath === undefined || seen.has('')) continue;
      const h: Hierarchy = { name: 'unified', version: 2, mount, ownPath, controllers: [], mountRoot };
      const directory = directoryOf(h, ownPath);
      if (directory === undefined) continue;
      seen.add('');
      h.controllers = v2Controllers(directory);
      layout.v2 = h;
    } else if (fsType === 'cgroup') {
      const options = fields[dash + 3]!.split(',');
      // The line of /proc/self/cgroup whose controller list is this mount's (name=systemd included).
      for (const [list, ownPath] of own) {
        if (list === '' || seen.has(list)) continue;
        const names = list.split(',');
        if (!names.every((name) => options.includes(name))) continue;
        const h: Hierarchy = { name: list, version: 1, mount, ownPath, controllers: names, mountRoot };
        if (directoryOf(h, ownPath) === undefined) continue;
        seen.add(list);
        layout.v1.push(h);
      }
    }
  }
  return layout;
}

function readV2Controllers(directory: string): string[] {
  try {
    return readFileSync(`${directory}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

export function readLayout(): Layout {
  let cgroup = '';
  let mountinfo = '';
  try {
    cgroup = readFileSync('/proc/self/cgroup', 'utf8');
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // No proc: no cgroups known.
  }
  const layout = parseLayout(cgroup, mountinfo, readV2Controllers);
  // mountinfo also lists mounts hidden beneath a later one (a tmpfs over /sys/fs/cgroup): only
  // those whose mount point still shows a cgroup file system count.
  const shown = (h: Hierarchy) => existsSync(`${h.mount}/cgroup.procs`);
  return { v2: layout.v2 && shown(layout.v2) ? layout.v2 : undefined, v1: layout.v1.filter(shown) };
}

/** The hierarchy carrying `controller` for this process: the v2 tree where its cgroup has it, else a v1 hierarchy. */
export function placeController(layout: Layout, controller: ControllerName | 'cpuacct'): Hierarchy | undefined {
  if (controller !== 'cpuacct' && layout.v2?.controllers.includes(controller)) return layout.v2;
  const name = v1Name(controller);
  return layout.v1.find((h) => h.controllers.includes(name));
}

export function layoutKind(layout: Layout): 'v2' | 'hybrid' | 'v1' | 'none' {
  const v1 = layout.v1.some((h) => !h.controllers.every((name) => name.startsWith('name=')));
  if (layout.v2) return v1 ? 'hybrid' : 'v2';
  return v1 ? 'v1' : 'none';
}
