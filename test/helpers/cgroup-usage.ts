// The second Any of a RunResponse's resourceUsage: the figures of the action's own cgroup
// (mountat.resourceusage.CgroupResourceUsage), decoded into plain numbers for assertions.
import { cgroupResourceUsageType } from '../../src/runner/protos.js';
import type { RunResponse__Output } from '../../src/runner/generated/buildbarn/runner/RunResponse.js';

export const CGROUP_RESOURCE_USAGE_URL = 'type.googleapis.com/mountat.resourceusage.CgroupResourceUsage';

export interface ActionCgroupFigures {
  /** CPU time of every process the action had, in seconds. */
  userSeconds: number;
  systemSeconds: number;
  memoryPeakBytes: number | undefined;
  memoryEvents: { low: number; high: number; max: number; oom: number; oomKill: number; oomGroupKill: number } | undefined;
  pidsPeak: number | undefined;
  pidsLimitHits: number | undefined;
  oomKilled: boolean;
}

interface Duration {
  seconds?: number | string;
  nanos?: number;
}
const seconds = (duration: Duration | undefined) => Number(duration?.seconds ?? 0) + (duration?.nanos ?? 0) / 1e9;
const number = (value: unknown) => (value === undefined || value === null ? undefined : Number(value));

/** The action's cgroup figures from a RunResponse; throws where the response has none. */
export function cgroupUsage(response: RunResponse__Output): ActionCgroupFigures {
  const any = response.resourceUsage[1];
  if (!any) throw new Error(`no cgroup resource usage: ${response.resourceUsage.map((usage) => usage.type_url).join(', ')}`);
  if (any.type_url !== CGROUP_RESOURCE_USAGE_URL) throw new Error(`unexpected type ${any.type_url}`);
  const type = cgroupResourceUsageType();
  const message = type.toObject(type.decode(any.value), { longs: Number, defaults: false }) as Record<string, unknown>;
  const events = message.memoryEvents as Record<string, unknown> | undefined;
  return {
    userSeconds: seconds(message.userTime as Duration | undefined),
    systemSeconds: seconds(message.systemTime as Duration | undefined),
    memoryPeakBytes: number(message.memoryPeak),
    memoryEvents: events && {
      low: Number(events.low ?? 0),
      high: Number(events.high ?? 0),
      max: Number(events.max ?? 0),
      oom: Number(events.oom ?? 0),
      oomKill: Number(events.oomKill ?? 0),
      oomGroupKill: Number(events.oomGroupKill ?? 0),
    },
    pidsPeak: number(message.pidsPeak),
    pidsLimitHits: number(message.pidsLimitHits),
    oomKilled: message.oomKilled === true,
  };
}
