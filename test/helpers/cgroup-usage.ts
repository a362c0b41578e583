// The second Any of a RunResponse's resourceUsage: the figures of the action's own cgroup
// (mountat.resourceusage.CgroupResourceUsage), decoded into plain numbers for assertions.
import { CGROUP_RESOURCE_USAGE_URL } from '../../src/runner/cgroup-usage.js';
import { cgroupResourceUsageType } from '../../src/runner/protos.js';
import type { RunResponse__Output } from '../../src/runner/generated/buildbarn/runner/RunResponse.js';

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

/** A field of a decoded message (toObject's plain objects), or undefined. */
const field = (value: unknown, name: string): unknown => (typeof value === 'object' && value !== null ? (Reflect.get(value, name) as unknown) : undefined);
/** A google.protobuf.Duration, in seconds (0 where absent). */
const seconds = (duration: unknown) => Number(field(duration, 'seconds') ?? 0) + Number(field(duration, 'nanos') ?? 0) / 1e9;
const number = (value: unknown) => (value === undefined || value === null ? undefined : Number(value));
const count = (events: unknown, name: string) => Number(field(events, name) ?? 0);

/** The action's cgroup figures from a RunResponse; throws where the response has none. */
export function cgroupUsage(response: RunResponse__Output): ActionCgroupFigures {
  const any = response.resourceUsage[1];
  if (!any) throw new Error(`no cgroup resource usage: ${response.resourceUsage.map((usage) => usage.type_url).join(', ')}`);
  if (any.type_url !== CGROUP_RESOURCE_USAGE_URL) throw new Error(`unexpected type ${any.type_url}`);
  const type = cgroupResourceUsageType();
  const message: unknown = type.toObject(type.decode(any.value), { longs: Number, defaults: false });
  const events = field(message, 'memoryEvents');
  return {
    userSeconds: seconds(field(message, 'userTime')),
    systemSeconds: seconds(field(message, 'systemTime')),
    memoryPeakBytes: number(field(message, 'memoryPeak')),
    memoryEvents:
      events === undefined
        ? undefined
        : {
            low: count(events, 'low'),
            high: count(events, 'high'),
            max: count(events, 'max'),
            oom: count(events, 'oom'),
            oomKill: count(events, 'oomKill'),
            oomGroupKill: count(events, 'oomGroupKill'),
          },
    pidsPeak: number(field(message, 'pidsPeak')),
    pidsLimitHits: number(field(message, 'pidsLimitHits')),
    oomKilled: field(message, 'oomKilled') === true,
  };
}
