// Teardown when the action did not play along, when it is done twice, by another process,
// and without /proc.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageOf } from '../src/base/index.js';
import { attach, defaultPlan, detach, DetachError, parsePlan, RecordStore, rootIdentityOf, rootKey, setUnmountMethodForTesting } from '../src/mounts/index.js';
import { instanceOf, parseJson } from './helpers/checked.js';
import { mountat } from './helpers/cli.js';
import { busyboxRoot, defaultPlanMountCount, mountTable, mountsUnder, openDir, removeTree, repo, scratchDir } from './helpers/roots.js';

let root: string;
beforeEach(() => {
  root = busyboxRoot();
});
afterEach(() => removeTree(root));

describe('teardown under pressure', () => {
  it('detaches our proc when the action mounted over it, and says what it found', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    execFileSync('mount', ['-t', 'tmpfs', 'stacked-by-action', join(root, 'proc')]);
    execFileSync('mount', ['-t', 'tmpfs', 'stacked-twice', join(root, 'proc')]);
    const report = detach(rootFd, attachment);
    expect(report.detached).toEqual(['tmp', 'sys', 'proc']);
    expect(report.stacked).toEqual(['proc: tmpfs stacked-twice', 'proc: tmpfs stacked-by-action']);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('detaches a tmp that a leftover process still has as its working directory', async () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    writeFileSync(join(root, 'tmp', 'busy'), 'open');
    const sleeper = spawn('sleep', ['30'], { cwd: join(root, 'tmp'), stdio: 'ignore' });
    await new Promise((resolve) => sleeper.once('spawn', resolve));
    try {
      const report = detach(rootFd, attachment);
      expect(report.detached).toEqual(['tmp', 'sys', 'proc']);
      expect(report.removed).toEqual(['tmp', 'sys', 'proc']);
      expect(mountTable()).toBe(before);
      // The process keeps its (now detached) tmpfs; the root no longer shows it.
      expect(readFileSync(`/proc/${sleeper.pid}/cwd/busy`, 'utf8')).toBe('open');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('finds our mount by its id when the action renamed a directory above it', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'a/b', kind: 'tmpfs' }] }));
    execFileSync('mv', [join(root, 'a'), join(root, 'renamed')]);
    const report = detach(rootFd, attachment);
    expect(report.detached).toEqual(['a/b']);
    expect(report.moved).toEqual(['a/b -> renamed/b']);
    expect(mountTable()).toBe(before);
  });

  it('is a successful no-op the second time', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    detach(rootFd, attachment);
    const again = detach(rootFd, attachment);
    expect(again.detached).toEqual([]);
    expect(again.notMounted).toEqual(['tmp', 'sys', 'proc']);
    expect(again.problems).toEqual([]);
    expect(mountTable()).toBe(before);
  });

  it('leaves alone a mountpoint directory the action filled, reporting it', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'proc', kind: 'proc' }] }));
    // The action cannot write into proc's own directory through the mount; simulate a file
    // that appeared in the underlying directory by writing it after the unmount instead.
    execFileSync('umount', ['-l', join(root, 'proc')]);
    writeFileSync(join(root, 'proc', 'left-by-action'), 'x');
    const report = detach(rootFd, attachment);
    expect(report.notMounted).toEqual(['proc']);
    expect(report.kept).toEqual([{ path: 'proc', reason: 'not empty' }]);
    expect(readFileSync(join(root, 'proc', 'left-by-action'), 'utf8')).toBe('x');
  });

  it('refuses a record made for another root', () => {
    const other = busyboxRoot();
    try {
      using rootFd = openDir(root);
      using otherFd = openDir(other);
      const attachment = attach(rootFd, defaultPlan());
      try {
        expect(() => detach(otherFd, attachment)).toThrow(/the record is for another root/);
        expect(mountsUnder(root)).toHaveLength(defaultPlanMountCount());
      } finally {
        detach(rootFd, attachment);
      }
    } finally {
      removeTree(other);
    }
  });

  it('collects every problem and still tears down the rest', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    // A record entry that cannot be resolved: its target escapes (a corrupt record).
    const broken = { ...attachment, mounts: [{ ...attachment.mounts[0]!, target: '../escape' }, ...attachment.mounts.slice(1)] };
    let error: unknown;
    try {
      detach(rootFd, broken);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DetachError);
    expect(instanceOf(error, DetachError).report.detached).toEqual(['tmp', 'sys']);
    expect(messageOf(error)).toMatch(/^detach proc from `\.\.\/escape`: target "\.\.\/escape" contains "\.\."/);
    detach(rootFd, attachment);
    expect(mountsUnder(root)).toEqual([]);
  });
});

describe('a record written while attach runs', () => {
  it('snapshots each step, and a snapshot taken mid-way undoes exactly that much', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const snapshots: Array<ReturnType<typeof structuredClone<import('../src/mounts/index.js').Attachment>>> = [];
    const attachment = attach(
      rootFd,
      parsePlan({
        mounts: [
          { target: 'a/proc', kind: 'proc' },
          { target: 'tmp', kind: 'tmpfs' },
        ],
      }),
      { onProgress: (s) => snapshots.push(s) },
    );
    // "?" marks a directory announced before mkdirat, its inode not known yet.
    expect(snapshots.map((s) => [s.mounts.map((m) => m.target), (s.pending ?? []).map((d) => d.path + (d.ino ? '' : '?'))])).toEqual([
      [[], ['a?']],
      [[], ['a', 'a/proc?']],
      [['a/proc'], ['tmp?']],
      [['a/proc', 'tmp'], []],
    ]);
    // As if the process died right after creating tmp's directory: that snapshot's record is all
    // another process has. It removes the proc mount and its directories, and tmp's too.
    const midway = snapshots[2]!;
    execFileSync('umount', [join(root, 'tmp')]); // the tmp mount was not recorded yet: a sweep's business
    const report = detach(rootFd, midway);
    expect(report.detached).toEqual(['a/proc']);
    expect(report.removed.sort()).toEqual(['a', 'a/proc', 'tmp']);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    expect(detach(rootFd, attachment).problems).toEqual([]);
  });

  it('removes a directory announced but not yet known by inode only while it is empty', () => {
    using rootFd = openDir(root);
    const record = {
      version: 1 as const,
      root: rootIdentityOf(rootFd),
      mounts: [],
      pending: [
        { path: 'proc', ino: '' },
        { path: 'tmp', ino: '' },
      ],
    };
    mkdirSync(join(root, 'proc'));
    mkdirSync(join(root, 'tmp'));
    writeFileSync(join(root, 'tmp', 'not-ours'), 'x');
    const report = detach(rootFd, record);
    expect(report.removed).toEqual(['proc']);
    expect(report.kept).toEqual([{ path: 'tmp', reason: 'not empty' }]);
  });
});

describe('teardown by another process', () => {
  it('mountat umount tears down from the record alone', () => {
    const before = mountTable();
    const state = scratchDir('mountat-state-');
    try {
      const mounted = mountat(['mount', '--root', root, '--state-dir', state]);
      expect(mounted.stderr).toBe('');
      expect(mounted.stdout).toMatch(/^mounted proc on proc \(mount id \d+\)\nmounted sysfs on sys .*\nmounted tmpfs on tmp .*\n$/);
      expect(mountsUnder(root)).toHaveLength(defaultPlanMountCount());
      expect(readdirSync(state)).toHaveLength(1);

      const again = mountat(['mount', '--root', root, '--state-dir', state]);
      expect(again.status).toBe(1);
      expect(again.stderr).toMatch(/^mountat: root .* already has mounts recorded in .*; run `mountat umount --root .*` first\n$/);

      const unmounted = mountat(['umount', '--root', root, '--state-dir', state]);
      expect(unmounted.stderr).toBe('');
      expect(unmounted.status).toBe(0);
      expect(unmounted.stdout).toBe('unmounted tmp\nunmounted sys\nunmounted proc\nremoved directory tmp\nremoved directory sys\nremoved directory proc\n');
      expect(mountTable()).toBe(before);
      expect(readdirSync(state)).toEqual([]);

      const noop = mountat(['umount', '--root', root, '--state-dir', state]);
      expect(noop.status).toBe(0);
      expect(noop.stdout).toMatch(/nothing recorded for .*; nothing to unmount/);
    } finally {
      removeTree(state);
    }
  });

  it('names a corrupt record and changes nothing', () => {
    const state = scratchDir('mountat-state-');
    try {
      const store = new RecordStore(state);
      using rootFd = openDir(root);
      const attachment = attach(rootFd, defaultPlan());
      const path = store.save(rootKey(attachment.root), attachment);
      writeFileSync(path, '{"version": 1, "mounts": "no"}');
      const result = mountat(['umount', '--root', root, '--state-dir', state]);
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(`mountat: the record ${path} is not a mountat record of version 1: record must have required property 'root'\n`);
      expect(mountsUnder(root)).toHaveLength(defaultPlanMountCount());
      detach(rootFd, attachment);
    } finally {
      removeTree(state);
    }
  });
});

describe('unmounting without /proc', () => {
  afterEach(() => setUnmountMethodForTesting(undefined));

  it('falls back to fchdir and a relative umount2 when asked, keeping the working directory', () => {
    setUnmountMethodForTesting('fchdir');
    const before = mountTable();
    const cwd = process.cwd();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    expect(detach(rootFd, attachment).detached).toEqual(['tmp', 'sys', 'proc']);
    expect(process.cwd()).toBe(cwd);
    expect(mountTable()).toBe(before);
  });

  it('finds the fallback by itself in a namespace with no /proc mounted', () => {
    const fixture = join(repo, 'test', 'fixtures', 'attach-detach-without-proc.mjs');
    const result = spawnSync(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', 'umount -l /proc && exec "$0" "$@"', process.execPath, fixture, root],
      {
        encoding: 'utf8',
      },
    );
    expect(result.stderr).toBe('');
    const seen = parseJson<unknown>(result.stdout);
    expect(seen).toMatchObject({
      procHere: false,
      method: 'fchdir',
      procInRootWorks: true,
      first: { detached: ['tmp', 'sys', 'proc'], removed: ['tmp', 'sys', 'proc'], problems: [] },
      second: { detached: [], notMounted: ['tmp', 'sys', 'proc'], problems: [] },
      cwdKept: true,
      rootAfter: ['bin', 'usr'],
    });
    expect(existsSync(join(root, 'proc'))).toBe(false);
  });
});
