// What a cgroup of an action's own is asked to bound, and what it reports. The same on cgroup v2
// and on the controllers a hybrid host keeps on v1: hierarchies.ts says which file of which tree
// carries each figure.

/** CPU bound: a quota (CPUs' worth of time per period) and/or a weight relative to other actions. */
export interface CpuLimit {
  /** In CPUs: 1.5 is 150 ms of CPU time every 100 ms (v2 cpu.max, v1 cpu.cfs_quota_us). */
  quota?: number | undefined;
  /** 1..10000, 100 the kernel's default (v2 cpu.weight; v1 cpu.shares, weight × 1024 / 100 as systemd converts). */
  weight?: number | undefined;
}

export interface CgroupLimits {
  /** pids.max: processes and threads at once. null: no limit. */
  pids: number | null;
  /** The action's memory, page cache and tmpfs pages it writes included; no swap beyond it. null: no limit. */
  memoryBytes: number | null;
  cpu: CpuLimit | null;
  /** Written to the action's /proc/PID/oom_score_adj (inherited by all it starts). null: left as it is. */
  oomScoreAdj: number | null;
  /**
   * The action's nice value (0..19), inherited by all it starts and a floor for them (their
   * RLIMIT_NICE: without CAP_SYS_NICE none can go below it). null: left as the caller's.
   */
  nice: number | null;
}

/** Pressure stall time (PSI) while the action ran: some / full, in microseconds. */
export interface Pressure {
  someMicros: number;
  fullMicros: number;
}

/** The counters of v2's memory.events (v1 has fewer: see hierarchies.ts). */
export interface MemoryEvents {
  low: number;
  high: number;
  max: number;
  oom: number;
  oomKill: number;
  oomGroupKill: number;
}

/**
 * The figures of the action's own cgroup, read after everything in it has ended: every process it
 * started counts, waited for or not. A field is absent where this host's layout has no file for it.
 */
export interface CgroupUsage {
  userMicros?: number;
  systemMicros?: number;
  memoryPeakBytes?: number;
  memoryEvents?: MemoryEvents;
  memoryPressure?: Pressure;
  cpuPressure?: Pressure;
  ioPressure?: Pressure;
  ioReadBytes?: number;
  ioWriteBytes?: number;
  /** The most processes and threads at once (pids.peak). */
  pidsPeak?: number;
  /** How many times a fork or clone was refused at the pids limit (pids.events "max"). */
  pidsLimitHits?: number;
  /** The kernel's OOM killer killed something in the cgroup (then mountat killed the rest). */
  oomKilled: boolean;
}

/** The controllers limits and accounting use; v1 calls io "blkio". */
export type ControllerName = 'pids' | 'memory' | 'cpu' | 'io';

/** What this process can do with cgroups (probeCgroups() in probe.ts): for doctor and the runner's start-up. */
export interface CgroupProbe {
  /** "v2": one unified tree; "hybrid": controllers on v1 beside a v2 tree; "v1": v1 only; "none": no cgroupfs. */
  layout: 'v2' | 'hybrid' | 'v1' | 'none';
  /** Where each controller is for this process: in the v2 tree (available to its cgroup), on v1, or nowhere. */
  controllers: Record<ControllerName, 'v2' | 'v1' | null>;
  /** The parent's directory in each hierarchy used ("unified", or a v1 hierarchy's name), e.g. /sys/fs/cgroup/memory/x. */
  parents: Record<string, string>;
  /** Absent when a cgroup could be made and removed below the parent in every hierarchy; else why not, one line. */
  problem?: string | undefined;
}
