// Every default of the action sandbox, in one place (the runner's config and `mountat exec`
// take theirs from here).
import { DEFAULT_ACTION_CAPABILITIES } from './capabilities.js';
import type { CgroupLimits } from './cgroups/types.js';

export const SANDBOX_DEFAULTS = {
  pidNamespace: true,
  pivotRoot: true,
  /** As bb_runner: the host's network. "none" costs a network namespace per action (bench/RESULTS.md). */
  network: 'host',
  capabilities: DEFAULT_ACTION_CAPABILITIES,
  /** Its seccomp filter refuses user namespaces (seccomp-policy.ts): the kernel surface behind most local privilege escalations. */
  userNamespaces: false,
  /** Refusals of its seccomp filter it does without: none. */
  allowSyscalls: [] as readonly string[],
  /**
   * Its own cgroup's bounds: 4096 processes and threads (BuildBuddy's default: a fork loop stops
   * there, a parallel build does not); no memory or CPU bound unless asked; oom_score_adj 1000, so
   * that when the whole container runs out, the kernel kills an action before the runner; nice 10,
   * so that when the actions fill the cores, the runner's thread (which starts, answers and tears
   * down every one of them) is not queued behind them (docs/performance.md).
   */
  limits: { pids: 4096, memoryBytes: null, cpu: null, oomScoreAdj: 1000, nice: 10 } as CgroupLimits,
} as const;

export const NETWORK_MODES = ['host', 'none'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];
