// What a directory holds, as one hash: every path, its type and mode, and file contents. Used to
// check that an input root holds exactly what it held before, whatever happened in between.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export function treeHash(dir: string): string {
  const hash = createHash('sha256');
  const walk = (relative: string) => {
    for (const name of readdirSync(join(dir, relative)).sort()) {
      const path = join(relative, name);
      const st = lstatSync(join(dir, path));
      hash.update(`${path}\0${st.mode}\0`);
      if (st.isSymbolicLink()) hash.update(readlinkSync(join(dir, path)));
      else if (st.isFile()) hash.update(readFileSync(join(dir, path)));
      else if (st.isDirectory()) walk(path);
      hash.update('\n');
    }
  };
  walk('');
  return hash.digest('hex');
}

/** The runner process's open fds, child processes and resident memory. */
export function processState(pid: number): { fds: number; children: number; rssKiB: number } {
  const children = readdirSync(`/proc/${pid}/task`).reduce((sum, task) => {
    const list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    return sum + (list === '' ? 0 : list.split(' ').length);
  }, 0);
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { fds: readdirSync(`/proc/${pid}/fd`).length, children, rssKiB: Number(rss?.[1] ?? 0) };
}
