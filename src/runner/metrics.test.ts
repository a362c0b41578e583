// RunnerMetrics and an action's cgroup figures: a report moves exactly the series it should, read
// from the registry's exposition text as Prometheus would scrape it.
import { describe, expect, it } from 'vitest';
import type { ActionReport } from './action.js';
import { RunnerMetrics } from './metrics.js';

const MiB = 2 ** 20;
const CGROUP_SERIES = /^mountat_runner_action_(peak_memory_bytes|oom_kills_total|pids_limit_hits_total)/;

/** name{labels} → value, for the runner's own series (the default process metrics move by themselves). */
async function scrape(metrics: RunnerMetrics): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    if (!line.startsWith('mountat_')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/** The cgroup series that changed between two scrapes, with their new values. */
function moved(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const changed: Record<string, number> = {};
  for (const [series, value] of after) if (CGROUP_SERIES.test(series) && before.get(series) !== value) changed[series] = value;
  return changed;
}

/** The bucket series of the peak memory histogram at and above `bytes`, each at `count`. */
function bucketsFrom(bytes: number, count: number): Record<string, number> {
  const series: Record<string, number> = {};
  for (let bound = MiB; bound <= 64 * 1024 * MiB; bound *= 2) {
    if (bound >= bytes) series[`mountat_runner_action_peak_memory_bytes_bucket{le="${bound}"}`] = count;
  }
  series['mountat_runner_action_peak_memory_bytes_bucket{le="+Inf"}'] = count;
  return series;
}

const report = (extra: Partial<ActionReport>): ActionReport => ({
  id: 'a',
  outcome: 'exited',
  exitCode: 0,
  durationMs: 12,
  setupMs: 3,
  teardownMs: 2,
  ...extra,
});

describe('RunnerMetrics and cgroup figures', () => {
  it('exports the counters at 0 and the histogram empty before any action', async () => {
    const values = await scrape(new RunnerMetrics());
    expect(values.get('mountat_runner_action_oom_kills_total')).toBe(0);
    expect(values.get('mountat_runner_action_pids_limit_hits_total')).toBe(0);
    expect(values.get('mountat_runner_action_peak_memory_bytes_count')).toBe(0);
    expect(values.get('mountat_runner_action_peak_memory_bytes_bucket{le="1048576"}')).toBe(0);
    expect(values.get('mountat_runner_action_peak_memory_bytes_bucket{le="68719476736"}')).toBe(0);
  });

  it('moves none of them for an action without a cgroup', async () => {
    const metrics = new RunnerMetrics();
    const before = await scrape(metrics);
    metrics.actionStarted();
    metrics.actionFinished(report({}));
    const after = await scrape(metrics);
    expect(moved(before, after)).toEqual({});
    // The report did arrive: the outcome counter moved.
    expect(after.get('mountat_runner_actions_total{outcome="exit_zero"}')).toBe(1);
  });

  it('observes the peak of an action that ran within its limits, and counts nothing else', async () => {
    const metrics = new RunnerMetrics();
    const before = await scrape(metrics);
    const peak = 300 * MiB + 4096;
    metrics.actionFinished(report({ cgroup: { memoryPeakBytes: peak, pidsPeak: 3, pidsLimitHits: 0, oomKilled: false } }));
    expect(moved(before, await scrape(metrics))).toEqual({
      ...bucketsFrom(peak, 1),
      mountat_runner_action_peak_memory_bytes_sum: peak,
      mountat_runner_action_peak_memory_bytes_count: 1,
    });
  });

  it('counts an OOM-killed action that also hit the pids limit once each, whatever the number of refusals', async () => {
    const metrics = new RunnerMetrics();
    const before = await scrape(metrics);
    // No memory.peak on this layout: no observation, rather than one of 0 bytes.
    const killed = report({ outcome: 'signalled', exitCode: undefined, signal: 'KILL', cgroup: { pidsLimitHits: 250, oomKilled: true } });
    metrics.actionFinished(killed);
    expect(moved(before, await scrape(metrics))).toEqual({
      mountat_runner_action_oom_kills_total: 1,
      mountat_runner_action_pids_limit_hits_total: 1,
    });
    metrics.actionFinished(report({ cgroup: { memoryPeakBytes: 64 * 1024 * MiB + 1, oomKilled: true } }));
    expect(moved(before, await scrape(metrics))).toEqual({
      mountat_runner_action_oom_kills_total: 2,
      mountat_runner_action_pids_limit_hits_total: 1,
      // Beyond the last bucket: +Inf only.
      ...bucketsFrom(Infinity, 1),
      mountat_runner_action_peak_memory_bytes_sum: 64 * 1024 * MiB + 1,
      mountat_runner_action_peak_memory_bytes_count: 1,
    });
  });
});
