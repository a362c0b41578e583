// The figures of an action's own cgroup as a RunResponse carries them: one CgroupResourceUsage
// (schemas/mountat/resourceusage/cgroup_resource_usage.proto) packed in an Any, beside the
// POSIXResourceUsage of resource-usage.ts. bb_worker copies both into the ActionResult's
// auxiliary metadata.
import { cgroupResourceUsageType } from './usage-protos.js';
import type { CgroupUsage, Pressure } from '../sandbox/index.js';

export const CGROUP_RESOURCE_USAGE_URL = 'type.googleapis.com/mountat.resourceusage.CgroupResourceUsage';

/** A google.protobuf.Duration; whole nanoseconds, since v1 counts CPU time in them. */
function duration(micros: number) {
  const nanos = Math.round(micros * 1000);
  return { seconds: Math.floor(nanos / 1e9), nanos: nanos % 1e9 };
}

function pressure(p: Pressure) {
  return { someTotal: duration(p.someMicros), fullTotal: duration(p.fullMicros) };
}

/**
 * Every figure the layout gave, and none it did not: a field of CgroupUsage that is absent stays
 * absent on the wire (the proto's `optional` and message fields), so that a reader can tell "no
 * such file here" from 0.
 */
export function packCgroupUsage(usage: CgroupUsage): { type_url: string; value: Buffer } {
  const type = cgroupResourceUsageType();
  // protobufjs writes a field that is set even at its default: false is left unset, as proto3 encodes it.
  const fields: Record<string, unknown> = {};
  if (usage.oomKilled) fields.oomKilled = true;
  if (usage.memoryEvents) fields.memoryEvents = { ...usage.memoryEvents };
  if (usage.memoryPeakBytes !== undefined) fields.memoryPeak = usage.memoryPeakBytes;
  if (usage.memoryPressure) fields.memoryPressure = pressure(usage.memoryPressure);
  if (usage.cpuPressure) fields.cpuPressure = pressure(usage.cpuPressure);
  if (usage.ioPressure) fields.ioPressure = pressure(usage.ioPressure);
  if (usage.userMicros !== undefined) fields.userTime = duration(usage.userMicros);
  if (usage.systemMicros !== undefined) fields.systemTime = duration(usage.systemMicros);
  if (usage.ioReadBytes !== undefined) fields.ioReadBytes = usage.ioReadBytes;
  if (usage.ioWriteBytes !== undefined) fields.ioWriteBytes = usage.ioWriteBytes;
  if (usage.pidsPeak !== undefined) fields.pidsPeak = usage.pidsPeak;
  if (usage.pidsLimitHits !== undefined) fields.pidsLimitHits = usage.pidsLimitHits;
  const message = type.fromObject(fields);
  return { type_url: CGROUP_RESOURCE_USAGE_URL, value: Buffer.from(type.encode(message).finish()) };
}
