// Which file of which tree carries each limit and each figure, on v2 and on v1: the one table of
// cgroup file names, as pure functions from limits to writes and from file text to figures.
import type { CgroupLimits, CgroupUsage, ControllerName, MemoryEvents, Pressure } from './types.js';

/** One write into the action's cgroup directory; `optional` ones are skipped where the file is absent (no swap accounting, say). */
export interface LimitWrite {
  file: string;
  value: string;
  optional?: boolean;
}

const CPU_PERIOD_US = 100_000;

/** v2's cpu.weight (1..10000) as v1's cpu.shares, as systemd converts CPUWeight: the defaults (100, 1024) meet. */
export function sharesOfWeight(weight: number): number {
  return Math.min(262144, Math.max(2, Math.round((weight * 1024) / 100)));
}

/** What to write for `controller`'s limits on a tree of `version`. */
export function limitWrites(controller: ControllerName, version: 1 | 2, limits: CgroupLimits): LimitWrite[] {
  const writes: LimitWrite[] = [];
  switch (controller) {
    case 'pids':
      if (limits.pids !== null) writes.push({ file: 'pids.max', value: String(limits.pids) });
      break;
    case 'memory':
      if (version === 2) {
        if (limits.memoryBytes !== null) {
          writes.push({ file: 'memory.max', value: String(limits.memoryBytes) });
          writes.push({ file: 'memory.swap.max', value: '0', optional: true });
        }
        // An OOM inside the action, whoever's limit it hits, kills the whole action and nothing else.
        writes.push({ file: 'memory.oom.group', value: '1' });
      } else if (limits.memoryBytes !== null) {
        // memsw (memory + swap) only after memory: the kernel keeps memsw >= memory.
        writes.push({ file: 'memory.limit_in_bytes', value: String(limits.memoryBytes) });
        writes.push({ file: 'memory.memsw.limit_in_bytes', value: String(limits.memoryBytes), optional: true });
      }
      break;
    case 'cpu': {
      const quota = limits.cpu?.quota;
      const weight = limits.cpu?.weight;
      if (version === 2) {
        if (quota !== undefined) writes.push({ file: 'cpu.max', value: `${Math.max(1000, Math.round(quota * CPU_PERIOD_US))} ${CPU_PERIOD_US}` });
        if (weight !== undefined) writes.push({ file: 'cpu.weight', value: String(weight) });
      } else {
        if (quota !== undefined) {
          writes.push({ file: 'cpu.cfs_period_us', value: String(CPU_PERIOD_US) });
          writes.push({ file: 'cpu.cfs_quota_us', value: String(Math.max(1000, Math.round(quota * CPU_PERIOD_US))) });
        }
        if (weight !== undefined) writes.push({ file: 'cpu.shares', value: String(sharesOfWeight(weight)) });
      }
      break;
    }
    case 'io':
      break;
  }
  return writes;
}

/** "key value" lines (cpu.stat, memory.events, pids.events, memory.oom_control) as a map. */
export function keyValues(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) map.set(key, Number(value));
  }
  return map;
}

/** A PSI file ("some avg10=… total=N", "full … total=N"): the totals, in µs. */
export function parsePressure(text: string): Pressure {
  const total = (kind: string) => Number(new RegExp(`^${kind} .*total=(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { someMicros: total('some'), fullMicros: total('full') };
}

/** v2 io.stat ("MAJ:MIN rbytes=N wbytes=N …" per device), summed. */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const match of text.matchAll(/rbytes=(\d+)/g)) read += Number(match[1]);
  for (const match of text.matchAll(/wbytes=(\d+)/g)) write += Number(match[1]);
  return { read, write };
}

/** v1 blkio.throttle.io_service_bytes_recursive ("MAJ:MIN Read N" per device, then "Total N"), summed. */
export function parseBlkioBytes(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [device, op, value] = line.trim().split(/\s+/);
    if (!device?.includes(':') || value === undefined) continue;
    if (op === 'Read') read += Number(value);
    if (op === 'Write') write += Number(value);
  }
  return { read, write };
}

/** v2 memory.events. */
export function memoryEventsV2(text: string): MemoryEvents {
  const kv = keyValues(text);
  const n = (key: string) => kv.get(key) ?? 0;
  return { low: n('low'), high: n('high'), max: n('max'), oom: n('oom'), oomKill: n('oom_kill'), oomGroupKill: n('oom_group_kill') };
}

/**
 * v1 has no memory.events: the times the limit was hit (memory.failcnt) stand for "max", the OOM
 * kills (memory.oom_control's oom_kill) for "oom" and "oom_kill"; v1 has no low, high or group kill.
 */
export function memoryEventsV1(failcnt: string, oomControl: string): MemoryEvents {
  const kills = keyValues(oomControl).get('oom_kill') ?? 0;
  return { low: 0, high: 0, max: Number(failcnt.trim()) || 0, oom: kills, oomKill: kills, oomGroupKill: 0 };
}

/** Reads a file of the action's cgroup in one tree; undefined where the layout has no such file. */
export type FileReader = (file: string) => string | undefined;

/** The figures one tree carries for `controllers` (those placed in it), added to `usage`. */
export function readUsage(version: 1 | 2, controllers: ReadonlyArray<ControllerName | 'cpuacct' | 'core'>, read: FileReader, usage: CgroupUsage): void {
  const has = (c: ControllerName | 'cpuacct' | 'core') => controllers.includes(c);
  if (version === 2 && has('core')) {
    const stat = read('cpu.stat');
    if (stat !== undefined) {
      const kv = keyValues(stat);
      usage.userMicros = kv.get('user_usec') ?? 0;
      usage.systemMicros = kv.get('system_usec') ?? 0;
    }
    for (const [key, file] of [
      ['memoryPressure', 'memory.pressure'],
      ['cpuPressure', 'cpu.pressure'],
      ['ioPressure', 'io.pressure'],
    ] as const) {
      const text = read(file);
      if (text !== undefined) usage[key] = parsePressure(text);
    }
  }
  if (version === 1 && has('cpuacct')) {
    const user = read('cpuacct.usage_user');
    const system = read('cpuacct.usage_sys');
    if (user !== undefined) usage.userMicros = Math.round(Number(user.trim()) / 1000);
    if (system !== undefined) usage.systemMicros = Math.round(Number(system.trim()) / 1000);
  }
  if (has('pids')) {
    const peak = read('pids.peak');
    if (peak !== undefined) usage.pidsPeak = Number(peak.trim());
    const events = read('pids.events');
    if (events !== undefined) usage.pidsLimitHits = keyValues(events).get('max') ?? 0;
  }
  if (has('memory')) {
    const peak = read(version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes');
    if (peak !== undefined) usage.memoryPeakBytes = Number(peak.trim());
    if (version === 2) {
      const events = read('memory.events');
      if (events !== undefined) usage.memoryEvents = memoryEventsV2(events);
    } else {
      const failcnt = read('memory.failcnt');
      const oomControl = read('memory.oom_control');
      if (failcnt !== undefined && oomControl !== undefined) usage.memoryEvents = memoryEventsV1(failcnt, oomControl);
    }
    if (usage.memoryEvents && usage.memoryEvents.oomKill + usage.memoryEvents.oomGroupKill > 0) usage.oomKilled = true;
  }
  if (has('io')) {
    const text = read(version === 2 ? 'io.stat' : 'blkio.throttle.io_service_bytes_recursive');
    if (text !== undefined) {
      const { read: r, write: w } = version === 2 ? parseIoStat(text) : parseBlkioBytes(text);
      usage.ioReadBytes = r;
      usage.ioWriteBytes = w;
    }
  }
}
