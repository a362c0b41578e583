// packCgroupUsage: every figure of CgroupUsage reaches the wire under its proto field, and a figure
// the layout did not give stays absent (not 0). Decoded with a protobufjs Root of its own, from
// the .proto file in schemas/, as a client of bb_worker would.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { CGROUP_RESOURCE_USAGE_URL, packCgroupUsage } from './cgroup-usage.js';
import type { CgroupUsage } from '../sandbox/index.js';

const schemas = fileURLToPath(new URL('../../schemas', import.meta.url));

function decode(packed: { type_url: string; value: Buffer }): Record<string, unknown> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : join(schemas, target));
  root.loadSync('mountat/resourceusage/cgroup_resource_usage.proto');
  // The Any's type URL names the message a reader must look up.
  const type = root.lookupType(packed.type_url.replace(/^type\.googleapis\.com\//, ''));
  return type.toObject(type.decode(packed.value), { longs: Number, defaults: false });
}

const duration = (seconds: number, nanos: number) => ({ seconds, nanos });

describe('packCgroupUsage', () => {
  it('names the message by its full name', () => {
    const packed = packCgroupUsage({ oomKilled: false });
    expect(packed.type_url).toBe(CGROUP_RESOURCE_USAGE_URL);
    expect(CGROUP_RESOURCE_USAGE_URL).toBe('type.googleapis.com/mountat.resourceusage.CgroupResourceUsage');
  });

  it('carries every figure of a full usage', () => {
    const usage: Required<CgroupUsage> = {
      userMicros: 2_500_001,
      systemMicros: 750_000,
      memoryPeakBytes: 314_572_800 + 12_345,
      memoryEvents: { low: 1, high: 2, max: 3, oom: 4, oomKill: 5, oomGroupKill: 6 },
      memoryPressure: { someMicros: 1_000_002, fullMicros: 3 },
      cpuPressure: { someMicros: 40, fullMicros: 0 },
      ioPressure: { someMicros: 7_000_000, fullMicros: 6_999_999 },
      ioReadBytes: 4096,
      ioWriteBytes: 2 ** 40 + 1, // beyond 32 bits: int64 on the wire
      pidsPeak: 4096,
      pidsLimitHits: 17,
      oomKilled: true,
    };
    expect(decode(packCgroupUsage(usage))).toEqual({
      userTime: duration(2, 500_001_000),
      systemTime: duration(0, 750_000_000),
      memoryPeak: 314_572_800 + 12_345,
      memoryEvents: { low: 1, high: 2, max: 3, oom: 4, oomKill: 5, oomGroupKill: 6 },
      memoryPressure: { someTotal: duration(1, 2000), fullTotal: duration(0, 3000) },
      // A stall time of 0 is there, and 0.
      cpuPressure: { someTotal: duration(0, 40_000), fullTotal: duration(0, 0) },
      ioPressure: { someTotal: duration(7, 0), fullTotal: duration(6, 999_999_000) },
      ioReadBytes: 4096,
      ioWriteBytes: 2 ** 40 + 1,
      pidsPeak: 4096,
      pidsLimitHits: 17,
      oomKilled: true,
    });
  });

  it('leaves absent what the layout did not give, and keeps a 0 it did', () => {
    // A hybrid host without the memory controller's v1 hierarchy, say: CPU time from the v2
    // tree's cpu.stat, pids on v1, nothing of memory.
    const sparse: CgroupUsage = { userMicros: 0, systemMicros: 12, pidsPeak: 1, pidsLimitHits: 0, oomKilled: false };
    const decoded = decode(packCgroupUsage(sparse));
    expect(decoded).toEqual({ userTime: duration(0, 0), systemTime: duration(0, 12_000), pidsPeak: 1, pidsLimitHits: 0 });
    for (const absent of ['memoryEvents', 'memoryPeak', 'memoryPressure', 'cpuPressure', 'ioPressure', 'ioReadBytes', 'ioWriteBytes', 'oomKilled']) {
      expect(decoded, absent).not.toHaveProperty(absent);
    }
  });

  it('encodes nothing for a usage with no figures', () => {
    expect(packCgroupUsage({ oomKilled: false }).value.length).toBe(0);
  });

  it('keeps the nanoseconds of v1 CPU time, which is counted in them', () => {
    // cpuacct.usage_user of 1,234,567,891 ns, read as microseconds.
    expect(decode(packCgroupUsage({ userMicros: 1_234_567.891, oomKilled: false }))).toEqual({ userTime: duration(1, 234_567_891) });
  });
});
