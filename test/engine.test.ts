// Each kind mounts for real beneath a root fd and works from inside the root; detach leaves
// the mount table and the root exactly as they were.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attach, defaultPlan, detach, parsePlan } from '../src/mounts/index.js';
import { busyboxRoot, coverPoints, mountTable, mountsUnder, openDir, removeTree, runInRoot, scratchDir } from './helpers/roots.js';

let root: string;
beforeEach(() => {
  root = busyboxRoot();
});
afterEach(() => removeTree(root));

describe('attach and detach the default plan', () => {
  it('makes /proc, /sys and /tmp work inside the root, then leaves the table as it was', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    try {
      // proc and sysfs are hardened by default: their covers are submounts of them (test/proc-covers.test.ts).
      expect(mountsUnder(root)).toEqual([
        `${root}/proc`,
        ...coverPoints('proc', `${root}/proc`),
        `${root}/sys`,
        ...coverPoints('sysfs', `${root}/sys`),
        `${root}/tmp`,
      ]);
      const inside = runInRoot(root, ['/bin/sh', '-c', 'readlink /proc/self/exe; cat /sys/devices/system/cpu/online; echo hi > /tmp/x && cat /tmp/x']);
      expect(inside.stderr).toBe('');
      expect(inside.stdout.split('\n')).toEqual(['/bin/busybox', expect.stringMatching(/^\d/), 'hi', '']);
      const sysWrite = runInRoot(root, ['/bin/sh', '-c', 'mkdir /sys/x']);
      expect(sysWrite.status).not.toBe(0);
      expect(sysWrite.stderr).toMatch(/Read-only file system/);
      expect(() => mkdirSync(join(root, 'sys', 'y'))).toThrow(/EROFS/);
      expect(statSync(join(root, 'tmp')).mode & 0o7777).toBe(0o1777);
      const lines = mountTable().split('\n');
      expect(lines.find((l) => l.includes(` ${root}/proc `))).toMatch(/ rw,nosuid,nodev,noexec,relatime (\S+ )*- proc proc /);
      expect(lines.find((l) => l.includes(` ${root}/sys `))).toMatch(/ ro,nosuid,nodev,noexec,relatime (\S+ )*- sysfs sysfs /);
      expect(lines.find((l) => l.includes(` ${root}/tmp `))).toMatch(/ rw,nosuid,nodev,relatime (\S+ )*- tmpfs tmpfs rw,size=524288k/);
    } finally {
      detach(rootFd, attachment);
    }
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('records unique mount ids read from the mounts it made', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    try {
      const table = mountTable();
      for (const mount of attachment.mounts) {
        expect(table).toMatch(new RegExp(`^${mount.mountId} \\d+ \\S+ / ${root}/${mount.target} `, 'm'));
        expect(mount.uniqueMountId).toMatch(/^\d+$/);
      }
      expect(attachment.mounts.map((m) => m.createdDirs.map((d) => d.path))).toEqual([['proc'], ['sys'], ['tmp']]);
    } finally {
      detach(rootFd, attachment);
    }
  });
});

describe('filesystem options reach the kernel', () => {
  it('caps a tmpfs at its size (ENOSPC) and sets its mode', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'tmp', kind: 'tmpfs', options: { size: '1m', mode: '0700' } }] }));
    try {
      expect(statSync(join(root, 'tmp')).mode & 0o7777).toBe(0o700);
      writeFileSync(join(root, 'tmp', 'small'), Buffer.alloc(512 * 1024));
      expect(() => writeFileSync(join(root, 'tmp', 'big'), Buffer.alloc(1024 * 1024))).toThrow(/ENOSPC/);
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('mounts proc with subset=pid: processes but no meminfo', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'proc', kind: 'proc', options: { subset: 'pid' } }] }));
    try {
      expect(existsSync(join(root, 'proc', 'self', 'exe'))).toBe(true);
      expect(existsSync(join(root, 'proc', 'meminfo'))).toBe(false);
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('creates nested targets with their missing parents and removes only those', () => {
    mkdirSync(join(root, 'dev'));
    writeFileSync(join(root, 'dev', 'keep'), 'device nodes live here');
    using rootFd = openDir(root);
    const attachment = attach(
      rootFd,
      parsePlan({
        mounts: [
          { target: 'dev/shm', kind: 'tmpfs' },
          { target: 'a/b/c', kind: 'tmpfs' },
        ],
      }),
    );
    expect(attachment.mounts.map((m) => m.createdDirs.map((d) => d.path))).toEqual([['dev/shm'], ['a', 'a/b', 'a/b/c']]);
    expect(mountsUnder(root)).toEqual([`${root}/dev/shm`, `${root}/a/b/c`]);
    const report = detach(rootFd, attachment);
    expect(report.removed).toEqual(['a/b/c', 'a/b', 'a', 'dev/shm']);
    expect(readdirSync(join(root, 'dev'))).toEqual(['keep']);
    expect(existsSync(join(root, 'a'))).toBe(false);
  });

  it('keeps pre-existing mountpoint directories and their content', () => {
    mkdirSync(join(root, 'tmp'));
    writeFileSync(join(root, 'tmp', 'input-file'), 'from the action input');
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    expect(existsSync(join(root, 'tmp', 'input-file'))).toBe(false); // covered by the tmpfs
    detach(rootFd, attachment);
    expect(readFileSync(join(root, 'tmp', 'input-file'), 'utf8')).toBe('from the action input');
    expect(readdirSync(root).sort()).toEqual(['bin', 'tmp', 'usr']);
  });
});

describe('bind mounts', () => {
  it('binds a host directory (by path or by fd) with private propagation and its attributes', () => {
    const source = scratchDir('mountat-bind-');
    writeFileSync(join(source, 'from-host'), 'host data');
    try {
      using sourceFd = openDir(source);
      using rootFd = openDir(root);
      const attachment = attach(
        rootFd,
        parsePlan({
          mounts: [
            { target: 'work', kind: 'bind', source },
            { target: 'ro', kind: 'bind', source: { fd: sourceFd }, attributes: { readOnly: true } },
          ],
        }),
      );
      try {
        expect(readFileSync(join(root, 'work', 'from-host'), 'utf8')).toBe('host data');
        writeFileSync(join(root, 'work', 'from-action'), 'written inside');
        expect(readFileSync(join(source, 'from-action'), 'utf8')).toBe('written inside');
        expect(() => writeFileSync(join(root, 'ro', 'nope'), 'x')).toThrow(/EROFS/);
        const line = mountTable()
          .split('\n')
          .find((l) => l.includes(` ${root}/work `));
        expect(line?.split(' - ')[0]).not.toMatch(/shared:|master:/);
      } finally {
        detach(rootFd, attachment);
      }
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      removeTree(source);
    }
  });

  it('refuses a bind source that is not a directory, mounting nothing', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    expect(() => attach(rootFd, parsePlan({ mounts: [{ target: 'x', kind: 'bind', source: join(root, 'bin', 'busybox') }] }))).toThrow(
      /mount bind on `x`: bind source is not a directory/,
    );
    expect(mountTable()).toBe(before);
    expect(existsSync(join(root, 'x'))).toBe(false);
  });

  it('names a missing bind source', () => {
    using rootFd = openDir(root);
    expect(() => attach(rootFd, parsePlan({ mounts: [{ target: 'x', kind: 'bind', source: '/nonexistent/source' }] }))).toThrow(
      /mount bind on `x`: open_tree: ENOENT/,
    );
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});
