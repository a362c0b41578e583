// bench/limit.c, the runner benchmark's yardstick: it must contain what it starts as its header
// says (or the runner would be measured against less work than its own), and leave nothing
// mounted where it runs (its mounts live only in the action's mount namespace). /bin/true of the
// root is a script here that checks, from inside, what the limit promises, and exits with the
// number of the first check that failed.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRoot, mountTable, removeTree, repo, scratchDir } from './helpers/roots.js';

const built = scratchDir('mountat-bench-limit-');
const limit = join(built, 'limit');
let root: string;
let tmp: string;

// pid 2 under an init; proc of its own PID namespace, with a cover; sysfs read-only; the
// temporary directory on /tmp; the old root gone; mountat's default capabilities only (CHOWN,
// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP: 0x1fb); NO_NEW_PRIVS; fds 0-2 only.
const CHECKS = `#!/bin/sh
[ "$$" = 2 ] || exit 10
read -r self rest < /proc/self/stat; [ "$self" = 2 ] || exit 11
grep -q ' /proc/sys ro,' /proc/self/mountinfo || exit 12
touch /sys/x 2>/dev/null && exit 13
[ -e /tmp/marker ] || exit 14
awk '$5 !~ "^/(proc|sys|tmp)?(/|$)" { bad = 1 } END { exit bad }' /proc/self/mountinfo || exit 15
grep -q '^CapBnd:	00000000000001fb$' /proc/self/status || exit 16
grep -q '^NoNewPrivs:	1$' /proc/self/status || exit 17
[ "$(ls /proc/self/fd | wc -l)" -le 4 ] || exit 18
exit 0
`;

beforeAll(() => {
  execFileSync('cc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', limit, join(repo, 'bench', 'limit.c')]);
  root = busyboxRoot();
  rmSync(join(root, 'bin', 'true'));
  writeFileSync(join(root, 'bin', 'true'), CHECKS);
  chmodSync(join(root, 'bin', 'true'), 0o755);
  tmp = join(built, 'tmp');
  mkdirSync(tmp);
  writeFileSync(join(tmp, 'marker'), '');
});
afterAll(() => {
  removeTree(root);
  removeTree(built);
});

describe('bench/limit.c', () => {
  it('runs one action contained, spawned, and leaves nothing mounted', () => {
    const before = mountTable();
    const result = spawnSync(limit, [root, tmp], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(mountTable()).toBe(before);
  });

  it('answers each request as a server, a failed check or exec as such', () => {
    const before = mountTable();
    const empty = join(built, 'empty');
    mkdirSync(empty);
    const result = spawnSync(limit, ['--serve'], { input: `1 ${root} ${tmp}\n2 ${root}\n3 ${empty} ${tmp}\n`, encoding: 'utf8' });
    expect(result.status).toBe(0);
    const answers = new Map(
      result.stdout
        .trim()
        .split('\n')
        .map((line) => [line.split(' ')[0], line.slice(line.indexOf(' ') + 1)]),
    );
    // 2 has a tmpfs on /tmp, without the marker: the script says so.
    expect(Object.fromEntries(answers)).toEqual({ '1': 'exit 0', '2': 'exit 14', '3': 'failed exec: No such file or directory' });
    expect(mountTable()).toBe(before);
  });
});
