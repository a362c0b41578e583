import { describe, expect, it } from 'vitest';
import { detachLines, detachSummary } from './detach-report.js';
import type { DetachReport } from './detach.js';

const empty: DetachReport = { detached: [], notMounted: [], stacked: [], removed: [], kept: [], problems: [] };

describe('a detach report in words', () => {
  const report: DetachReport = {
    ...empty,
    detached: ['tmp', 'proc'],
    covers: ['proc/sys', 'proc/irq'],
    notMounted: ['sys'],
    stacked: ['tmp/x: tmpfs none'],
    removed: ['tmp'],
    kept: [
      { path: 'proc', reason: 'not empty' },
      { path: 'sys', reason: 'already gone' },
    ],
  };

  it('as lines, one thing done a line', () => {
    expect(detachLines(report)).toEqual([
      'unmounted tmp',
      'unmounted proc',
      'not mounted any more: sys',
      'also removed a mount stacked on ours: tmp/x: tmpfs none',
      'removed directory tmp',
      'kept directory proc: not empty',
    ]);
  });

  it('as one summary line', () => {
    expect(detachSummary(report, 'with the container')).toBe(
      'unmounted tmp, proc (with 2 covers); already gone with the container: sys; also removed mounts stacked on ours: tmp/x: tmpfs none; removed directories tmp; kept proc (not empty)',
    );
  });

  it('says so when there was nothing to do', () => {
    expect(detachLines(empty)).toEqual([]);
    expect(detachSummary(empty, 'with the container')).toBe('nothing left to remove');
  });
});
