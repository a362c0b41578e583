// Which mounts the start-up sweep may take, as pure logic over what the sweep shows of each
// (a fake candidate is enough: the rule only reads it). Real mounts: test/startup-sweep.test.ts.
import { mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePlan, type SweepCandidate } from '../mounts/index.js';
import { BuildDirectory } from './build-directory.js';
import { startupSweepRule } from './startup-sweep.js';

const dir = mkdtempSync(join(tmpdir(), 'mountat-sweep-rule-'));
mkdirSync(join(dir, 'a1', 'tmp'), { recursive: true });
const build = BuildDirectory.open(dir);
afterAll(() => {
  build.fd.close();
  rmSync(dir, { recursive: true, force: true });
});

const identity = (path: string) => {
  const stat = statSync(path, { bigint: true });
  return { dev: `${Number(stat.dev >> 8n) & 0xfff}:${Number((stat.dev & 0xffn) | ((stat.dev >> 12n) & 0xfff00n))}`, ino: stat.ino };
};
const candidate = (relative: string, fsType: string, root?: string): SweepCandidate => ({
  relative,
  fsType,
  source: 'x',
  root: () => (root ? identity(root) : undefined),
});
const plan = parsePlan({
  mounts: [
    { target: 'proc', kind: 'proc' },
    { target: 'sys', kind: 'sysfs' },
    { target: 'usr/lib', kind: 'bind', source: '/usr/lib' },
    { target: 'run', kind: 'tmpfs' },
  ],
});
const owns = startupSweepRule({ plan, temporaryDirectoryMount: 'tmp', builtinHook: true }, build);

describe('the start-up sweep rule', () => {
  it.each([
    ['a proc at a proc target of an input root', candidate('a1/root/proc', 'proc'), true],
    ['a sysfs at the sysfs target', candidate('a1/root/sys', 'sysfs'), true],
    ['a tmpfs at the tmpfs target', candidate('a1/root/run', 'tmpfs'), true],
    ['a tmpfs at the proc target (another kind)', candidate('a1/root/proc', 'tmpfs'), false],
    ['a proc outside an input root', candidate('a1/proc', 'proc'), false],
    ['a proc in a directory not named root', candidate('a1/rootfs/proc', 'proc'), false],
    ['a proc deeper than an input root', candidate('a1/x/root/proc', 'proc'), false],
    ['a bind at <build>/cache', candidate('cache', 'ext4', '/usr'), false],
    ['a proc at a target the plan does not name', candidate('a1/root/other', 'proc'), false],
    ["the plan's bind, of its source", candidate('a1/root/usr/lib', 'ext4', '/usr/lib'), true],
    ["a bind at the plan's bind target, of another source", candidate('a1/root/usr/lib', 'ext4', '/usr'), false],
    ['a bind of /usr where the plan binds nothing', candidate('a1/root/usr', 'ext4', '/usr'), false],
    ["the temporary directory's bind, of the action's own directory", candidate('a1/root/tmp', 'ext4', join(dir, 'a1', 'tmp')), true],
    ['a bind at tmp of something else', candidate('a1/root/tmp', 'ext4', '/usr'), false],
    ['a mount at tmp that cannot be reached as itself', candidate('a1/root/tmp', 'tmpfs'), false],
  ])('%s: %s', (_name, mount, expected) => {
    expect(owns(mount)).toBe(expected);
  });

  it("takes nothing without the built-in hook (external hooks' mounts are theirs)", () => {
    const none = startupSweepRule({ plan, temporaryDirectoryMount: 'tmp', builtinHook: false }, build);
    expect(none(candidate('a1/root/proc', 'proc'))).toBe(false);
  });
});
