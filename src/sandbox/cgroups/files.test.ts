import { describe, expect, it } from 'vitest';
import { limitWrites, parseBlkioBytes, parseIoStat, parsePressure, readUsage, sharesOfWeight } from './files.js';
import type { CgroupLimits, CgroupUsage } from './types.js';

const ALL: CgroupLimits = { pids: 4096, memoryBytes: 64 << 20, cpu: { quota: 1.5, weight: 100 }, oomScoreAdj: 1000, nice: 10 };
const NONE: CgroupLimits = { pids: null, memoryBytes: null, cpu: null, oomScoreAdj: null, nice: null };

describe('which file carries each limit', () => {
  it('writes v2 files on v2 and v1 files on v1', () => {
    expect(limitWrites('pids', 2, ALL)).toEqual([{ file: 'pids.max', value: '4096' }]);
    expect(limitWrites('memory', 2, ALL).map((w) => `${w.file}=${w.value}`)).toEqual(['memory.max=67108864', 'memory.swap.max=0', 'memory.oom.group=1']);
    expect(limitWrites('memory', 1, ALL).map((w) => `${w.file}=${w.value}`)).toEqual([
      'memory.limit_in_bytes=67108864',
      'memory.memsw.limit_in_bytes=67108864',
    ]);
    expect(limitWrites('cpu', 2, ALL).map((w) => `${w.file}=${w.value}`)).toEqual(['cpu.max=150000 100000', 'cpu.weight=100']);
    expect(limitWrites('cpu', 1, ALL).map((w) => `${w.file}=${w.value}`)).toEqual(['cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=150000', 'cpu.shares=1024']);
  });

  it('writes nothing for a limit not set, but always groups OOM kills on v2', () => {
    expect(limitWrites('pids', 1, NONE)).toEqual([]);
    expect(limitWrites('memory', 1, NONE)).toEqual([]);
    expect(limitWrites('memory', 2, NONE)).toEqual([{ file: 'memory.oom.group', value: '1' }]);
    expect(limitWrites('cpu', 2, NONE)).toEqual([]);
  });

  it('converts a weight to v1 shares as systemd does, the defaults meeting', () => {
    expect(sharesOfWeight(1)).toBe(10);
    expect(sharesOfWeight(100)).toBe(1024);
    expect(sharesOfWeight(10000)).toBe(102400);
  });
});

describe('reading the figures', () => {
  it('parses PSI, io.stat and blkio totals', () => {
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n')).toEqual({
      someMicros: 1234,
      fullMicros: 56,
    });
    expect(parseIoStat('8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n')).toEqual({ read: 101, write: 22 });
    expect(parseBlkioBytes('8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n')).toEqual({ read: 4096, write: 8192 });
  });

  it('reads every figure of a v2 tree, and an OOM kill from memory.events', () => {
    const files: Record<string, string> = {
      'cpu.stat': 'usage_usec 300\nuser_usec 200\nsystem_usec 100\n',
      'memory.pressure': 'some avg10=0 avg60=0 avg300=0 total=7\nfull avg10=0 avg60=0 avg300=0 total=3\n',
      'memory.peak': '4096\n',
      'memory.events': 'low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 1\n',
      'pids.peak': '12\n',
      'pids.events': 'max 3\n',
      'io.stat': '8:0 rbytes=10 wbytes=20\n',
    };
    const usage: CgroupUsage = { oomKilled: false };
    readUsage(2, ['core', 'pids', 'memory', 'io'], (file) => files[file], usage);
    expect(usage).toEqual({
      oomKilled: true,
      userMicros: 200,
      systemMicros: 100,
      memoryPressure: { someMicros: 7, fullMicros: 3 },
      memoryPeakBytes: 4096,
      memoryEvents: { low: 0, high: 0, max: 5, oom: 1, oomKill: 1, oomGroupKill: 1 },
      pidsPeak: 12,
      pidsLimitHits: 3,
      ioReadBytes: 10,
      ioWriteBytes: 20,
    });
  });

  it('reads v1 figures from their v1 files, and leaves out what a tree lacks', () => {
    const files: Record<string, string> = {
      'memory.max_usage_in_bytes': '8192\n',
      'memory.failcnt': '4\n',
      'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
      'cpuacct.usage_user': '2000000\n',
      'cpuacct.usage_sys': '1000\n',
    };
    const usage: CgroupUsage = { oomKilled: false };
    readUsage(1, ['memory', 'cpuacct', 'io'], (file) => files[file], usage);
    expect(usage).toEqual({
      oomKilled: true,
      memoryPeakBytes: 8192,
      memoryEvents: { low: 0, high: 0, max: 4, oom: 2, oomKill: 2, oomGroupKill: 0 },
      userMicros: 2000,
      systemMicros: 1,
    });
  });
});
