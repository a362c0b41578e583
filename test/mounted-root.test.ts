// The one owner of "mounted and recorded": what a failing step inside its start leaves (nothing,
// or exactly the record of what is left, owned by the result), and a teardown that keeps the record when it fails.
// The mounts are real; where a record write must fail at one exact step, a store wrapping the
// real one throws there (the only fake: the failure of a write).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AlreadyRecordedError,
  AttachError,
  DetachError,
  defaultPlan,
  mountRecorded,
  MountedRoot,
  RecordStore,
  type Attachment,
  type RecordKeeping,
} from '../src/mounts/index.js';
import { overriding } from './helpers/checked.js';
import { busyboxRoot, mountTable, openDir, removeTree, scratchDir } from './helpers/roots.js';

let dir: string;
let root: string;
let stateDir: string;
beforeEach(() => {
  // The root sits on a bind mount of its own, so that the test can make it read-only: the one
  // real way to make removing the engine's directories fail (EROFS) while the mounts still come off.
  dir = scratchDir('mountat-owner-');
  execFileSync('mount', ['--bind', dir, dir]);
  root = join(dir, 'root');
  execFileSync('mv', [busyboxRoot(), root]);
  stateDir = scratchDir('mountat-owner-state-');
});
afterEach(() => {
  execFileSync('umount', [dir]);
  removeTree(dir);
  removeTree(stateDir);
});

const readOnly = (on: boolean) => execFileSync('mount', ['-o', `remount,bind,${on ? 'ro' : 'rw'}`, dir]);

/** The real store, with the journal append that holds `failAt(snapshot)` true throwing instead (after `before()`). */
function failingStore(store: RecordStore, failAt: (snapshot: Attachment) => boolean, before: () => void = () => {}): RecordKeeping {
  return {
    load: (key) => store.load(key),
    remove: (key) => store.remove(key),
    pathFor: (key) => store.pathFor(key),
    journal: (key) => {
      const journal = store.journal(key);
      return overriding(journal, {
        append: (snapshot: Attachment & Record<string, unknown>) => {
          if (failAt(snapshot)) {
            before();
            throw new Error('write: ENOSPC (no space left on the state directory)');
          }
          journal.append(snapshot);
        },
        close: () => journal.close(),
      });
    },
  };
}

describe('mountRecorded', () => {
  it('keeps the record current while mounted, and tearDown() removes mounts, directories and record', () => {
    const table = mountTable();
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const attempt = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse', extra: { where: 'here' } });
    expect(attempt.error).toBeUndefined();
    const mounted = attempt.mounted!;
    expect(store.load('k')?.mounts).toEqual(mounted.attachment.mounts);
    expect(mounted.attachment.where).toBe('here');
    expect(mountTable()).not.toBe(table);
    mounted.tearDown();
    expect(mountTable()).toBe(table);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    // Once torn down, again is nothing.
    expect(mounted.tearDown().detached).toEqual([]);
  });

  it('refuses a key that already has mounts recorded, touching nothing', () => {
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const first = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' }).mounted!;
    const table = mountTable();
    expect(() => mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' })).toThrow(AlreadyRecordedError);
    expect(mountTable()).toBe(table);
    expect(store.load('k')?.mounts).toEqual(first.attachment.mounts);
    first.tearDown();
  });

  it('mounts nothing when the record cannot be written at all (its directory is under a file)', () => {
    const table = mountTable();
    using rootFd = openDir(root);
    writeFileSync(join(stateDir, 'file'), '');
    const store = new RecordStore(join(stateDir, 'file', 'state'));
    const attempt = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'replace' });
    expect(attempt.error?.message).toMatch(/ENOTDIR|EEXIST/);
    expect(attempt.leftover).toBeUndefined();
    expect(mountTable()).toBe(table);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('rolls back and leaves no record when the final record write fails', () => {
    const table = mountTable();
    using rootFd = openDir(root);
    const plan = defaultPlan();
    const store = failingStore(new RecordStore(stateDir), (snapshot) => snapshot.mounts.length === plan.mounts.length);
    const attempt = mountRecorded(rootFd, plan, { records: store, key: 'k', existing: 'replace' });
    expect(attempt.error?.message).toContain('write: ENOSPC (no space left on the state directory)');
    expect(attempt.leftover).toBeUndefined();
    expect(mountTable()).toBe(table);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('keeps exactly the record of what its rollback could not remove, and owns it: leftover.tearDown() retries', () => {
    const table = mountTable();
    using rootFd = openDir(root);
    const plan = defaultPlan();
    const real = new RecordStore(stateDir);
    // The last write fails, and by then the root has become read-only: the rollback unmounts
    // everything but cannot remove the directories it created.
    const store = failingStore(
      real,
      (snapshot) => snapshot.mounts.length === plan.mounts.length,
      () => readOnly(true),
    );
    const { error, leftover } = mountRecorded(rootFd, plan, { records: store, key: 'k', existing: 'replace' });
    readOnly(false);
    expect(error).toBeInstanceOf(AttachError);
    expect(error?.message).toMatch(
      /^cannot write the record .*k\.json: write: ENOSPC \(no space left on the state directory\); rollback also failed: remove `tmp`: unlinkat `tmp`: EROFS \(and 2 more\)$/,
    );
    expect(mountTable()).toBe(table);
    expect(readdirSync(root).sort()).toEqual(['bin', 'proc', 'sys', 'tmp', 'usr']);
    expect(leftover?.recordPath).toBe(join(stateDir, 'k.json'));
    expect(existsSync(leftover!.recordPath)).toBe(true);
    const report = leftover!.tearDown();
    expect(report.removed.sort()).toEqual(['proc', 'sys', 'tmp']);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('owns what is left when the record cannot be closed and the undo fails too: leftover.tearDown() retries', () => {
    const table = mountTable();
    using rootFd = openDir(root);
    const real = new RecordStore(stateDir);
    // Every write lands; the close then reports a failed write-back (as NFS can), by which time the
    // root has become read-only: the undo unmounts everything but cannot remove its directories.
    const store: RecordKeeping = {
      ...failingStore(real, () => false),
      journal: (key) => {
        const journal = real.journal(key);
        return overriding(journal, {
          append: (snapshot: Attachment & Record<string, unknown>) => journal.append(snapshot),
          close: () => {
            journal.close();
            readOnly(true);
            throw new Error('close: EIO (the write-back failed)');
          },
        });
      },
    };
    const { error, leftover } = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'replace' });
    readOnly(false);
    expect(error).toBeInstanceOf(AttachError);
    expect(error?.message).toMatch(/^cannot write the record .*k\.json: close: EIO \(the write-back failed\); rollback also failed: /);
    expect(mountTable()).toBe(table);
    expect(leftover?.recordPath).toBe(join(stateDir, 'k.json'));
    expect(leftover!.tearDown().removed.sort()).toEqual(['proc', 'sys', 'tmp']);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('keeps the record when its teardown fails, and a later tearDown() finishes the job', () => {
    const table = mountTable();
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const mounted = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' }).mounted!;
    readOnly(true);
    expect(() => mounted.tearDown()).toThrow(DetachError);
    readOnly(false);
    expect(mountTable()).toBe(table);
    expect(store.load('k')?.mounts).toEqual(mounted.attachment.mounts);
    // Another process (`mountat umount`, a poststop) would start from the record.
    const again = MountedRoot.fromRecord(rootFd, store, 'k')!;
    expect(again.tearDown().removed.sort()).toEqual(['proc', 'sys', 'tmp']);
    expect(readdirSync(stateDir)).toEqual([]);
  });
});
