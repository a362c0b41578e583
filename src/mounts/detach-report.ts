// What a detach did, in words: one list of what happened, rendered as lines (`mountat umount`,
// `mountat exec`) or as one summary line (the OCI hook's stdout, where a runtime shows one line).
import type { DetachReport } from './detach.js';

interface Happened {
  /** As a line per item ("unmounted tmp"), and as a summary of all items ("unmounted tmp, sys"). */
  line: (item: string) => string;
  summary: (items: string[]) => string;
  items: string[];
}

function happened(report: DetachReport, goneWith: string): Happened[] {
  const covers = report.covers ? ` (with ${report.covers.length} covers)` : '';
  const all: Happened[] = [
    { items: report.detached, line: (t) => `unmounted ${t}`, summary: (all) => `unmounted ${all.join(', ')}${covers}` },
    { items: report.notMounted, line: (t) => `not mounted any more: ${t}`, summary: (all) => `already gone ${goneWith}: ${all.join(', ')}` },
    {
      items: report.stacked,
      line: (s) => `also removed a mount stacked on ours: ${s}`,
      summary: (all) => `also removed mounts stacked on ours: ${all.join(', ')}`,
    },
    { items: report.removed, line: (p) => `removed directory ${p}`, summary: (all) => `removed directories ${all.join(', ')}` },
    ...report.kept
      .filter((kept) => kept.reason !== 'already gone')
      .map((kept) => ({
        items: [kept.path],
        line: (p: string) => `kept directory ${p}: ${kept.reason}`,
        summary: ([p]: string[]) => `kept ${p} (${kept.reason})`,
      })),
  ];
  return all.filter((entry) => entry.items.length > 0);
}

/** A line per thing done, in the order it was done. */
export function detachLines(report: DetachReport): string[] {
  return happened(report, '').flatMap((entry) => entry.items.map(entry.line));
}

/** One line of all of it; `goneWith` says with what the already-unmounted went ("with the container"). */
export function detachSummary(report: DetachReport, goneWith: string): string {
  return (
    happened(report, goneWith)
      .map((entry) => entry.summary(entry.items))
      .join('; ') || 'nothing left to remove'
  );
}
