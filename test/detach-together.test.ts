// Teardown in as few umount2 calls as can be proved safe: every mount of a plan proven ours with
// everything beneath it (listmount) goes in one umount2; a mount that is not ours beneath one of
// ours is left mounted, with ours around it gone and the record saying exactly what is left; a
// teardown cut short between its moves and its umount2, and an attach killed between two record
// writes, are both undone from the record alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants as C, listmount, moveMountOntoFd, openat2, statx } from '../src/linux/index.js';
import {
  attach,
  defaultPlan,
  detach,
  DetachError,
  mountRecorded,
  MountedRoot,
  parsePlan,
  RecordStore,
  setListmountMissingForTesting,
} from '../src/mounts/index.js';
import { instanceOf } from './helpers/checked.js';
import { busyboxRoot, mountTable, mountsUnder, openDir, removeTree, repo, scratchDir } from './helpers/roots.js';

let root: string;
let stateDir: string;
beforeEach(() => {
  root = busyboxRoot();
  stateDir = scratchDir('mountat-together-state-');
});
afterEach(() => {
  setListmountMissingForTesting(false);
  removeTree(root);
  removeTree(stateDir);
});

function uniqueIdAt(path: string): bigint {
  return statx(C.AT_FDCWD, path, 0, C.STATX_MNT_ID_UNIQUE).mountId;
}

describe('a teardown proven ours', () => {
  it('lists exactly the covers beneath a hardened proc: the proof the merge rests on', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    const proc = attachment.mounts.find((mount) => mount.kind === 'proc')!;
    const beneath = listmount(BigInt(proc.uniqueMountId!)).map(String).sort();
    expect(beneath).toEqual((proc.covers ?? []).map((cover) => cover.uniqueMountId).sort());
    expect(beneath.length).toBeGreaterThan(0);
    detach(rootFd, attachment);
  });

  it('unmounts the whole plan in one umount2, and leaves the table and the root as they were', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const mounted = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' }).mounted!;
    const report = mounted.tearDown();
    // proc was unmounted; sys and tmp had been moved beneath it (onto its `sys` cover).
    expect(report.together).toEqual(['proc', 'sys', 'tmp']);
    expect(report.detached).toEqual(['tmp', 'sys', 'proc']);
    expect(report.removed).toEqual(['tmp', 'sys', 'proc']);
    expect(report.covers?.length).toBeGreaterThan(0);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('does the same with the umount2 on a thread of the pool (tearDownAsync), one teardown for concurrent callers', async () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const mounted = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' }).mounted!;
    const [report, same] = await Promise.all([mounted.tearDownAsync(), mounted.tearDownAsync()]);
    expect(same).toBe(report);
    expect(report.together).toEqual(['proc', 'sys', 'tmp']);
    expect(report.removed).toEqual(['tmp', 'sys', 'proc']);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    expect(readdirSync(stateDir)).toEqual([]);
    expect((await mounted.tearDownAsync()).detached).toEqual([]);
  });

  it('keeps the record of what is left when an async teardown leaves a mount around a foreign one', async () => {
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const mounted = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' }).mounted!;
    mkdirSync(join(root, 'tmp', 'x'));
    execFileSync('mount', ['-t', 'tmpfs', 'not-mountats', join(root, 'tmp', 'x')]);
    const failure = await mounted.tearDownAsync().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(instanceOf(failure, DetachError).report.left).toEqual(['tmp']);
    expect(store.load('k')?.mounts.map((mount) => mount.target)).toEqual(['tmp']);
    execFileSync('umount', [join(root, 'tmp', 'x')]);
    expect((await mounted.tearDownAsync()).detached).toEqual(['tmp']);
    expect(mountsUnder(root)).toEqual([]);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('takes each mount in an umount2 of its own where listmount is missing, with the same result', () => {
    setListmountMissingForTesting(true);
    const before = mountTable();
    using rootFd = openDir(root);
    const report = detach(rootFd, attach(rootFd, defaultPlan()));
    expect(report.together).toBeUndefined();
    expect(report.detached).toEqual(['tmp', 'sys', 'proc']);
    expect(mountTable()).toBe(before);
  });

  it('takes a recursive bind with the submounts its clone brought along, recorded as ours', () => {
    const source = scratchDir('mountat-together-source-');
    mkdirSync(join(source, 'inner'));
    execFileSync('mount', ['-t', 'tmpfs', 'source-inner', join(source, 'inner')]);
    try {
      const before = mountTable();
      using rootFd = openDir(root);
      const plan = parsePlan({
        mounts: [
          { target: 'proc', kind: 'proc' },
          { target: 'sys', kind: 'sysfs' },
          { target: 'tmp', kind: 'bind', source, options: { recursive: true } },
        ],
      });
      const attachment = attach(rootFd, plan);
      const bind = attachment.mounts.find((mount) => mount.kind === 'bind')!;
      expect(bind.cloned).toEqual([uniqueIdAt(join(root, 'tmp', 'inner')).toString()]);
      const report = detach(rootFd, attachment);
      expect(report.together).toEqual(['proc', 'sys', 'tmp']);
      expect(mountTable()).toBe(before);
    } finally {
      execFileSync('umount', [join(source, 'inner')]);
      removeTree(source);
    }
  });
});

describe('a mount that is not ours beneath one of ours', () => {
  it('is left mounted with the covers above it; ours around it go; the record says exactly what is left', () => {
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    const mounted = mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' }).mounted!;
    const proc = mounted.attachment.mounts.find((mount) => mount.kind === 'proc')!;
    // Someone in this namespace mounts inside our proc, beneath our read-only cover of proc/sys.
    execFileSync('mount', ['-t', 'tmpfs', 'not-mountats', join(root, 'proc', 'sys', 'kernel')]);
    const failure = instanceOf(
      (() => {
        try {
          mounted.tearDown();
        } catch (error) {
          return error;
        }
        return undefined;
      })(),
      DetachError,
    );
    expect(failure.report.together).toBeUndefined();
    expect(failure.report.detached).toEqual(['tmp', 'sys']);
    expect(failure.report.left).toEqual(['proc (with proc/sys)']);
    expect(failure.message).toContain('left mounted with its cover proc/sys: a mount that mountat did not make is beneath it');
    // The foreign mount is still there, and of ours exactly proc and its cover above it.
    expect(mountsUnder(root)).toEqual([join(root, 'proc'), join(root, 'proc', 'sys'), join(root, 'proc', 'sys', 'kernel')]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'proc', 'usr']);
    // The record was rewritten to that: proc, with only the cover still on it.
    const record = store.load('k')!;
    expect(record.mounts).toEqual([{ ...proc, covers: proc.covers!.filter((cover) => cover.path === 'proc/sys') }]);
    expect(record.pending).toBeUndefined();
    expect(mounted.attachment.mounts).toEqual(record.mounts);
    // Once the foreign mount is gone, the owner (or a later process, from the record) finishes.
    execFileSync('umount', [join(root, 'proc', 'sys', 'kernel')]);
    const again = MountedRoot.fromRecord(rootFd, store, 'k')!.tearDown();
    expect(again.detached).toEqual(['proc']);
    expect(mountsUnder(root)).toEqual([]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('under a tmpfs with no covers: the tmpfs stays, proc and sys go', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    mkdirSync(join(root, 'tmp', 'x'));
    execFileSync('mount', ['-t', 'tmpfs', 'not-mountats', join(root, 'tmp', 'x')]);
    const failure = instanceOf(
      (() => {
        try {
          detach(rootFd, attachment);
        } catch (error) {
          return error;
        }
        return undefined;
      })(),
      DetachError,
    );
    expect(failure.report.detached).toEqual(['sys', 'proc']);
    expect(failure.report.left).toEqual(['tmp']);
    expect(failure.remaining?.mounts.map((mount) => mount.target)).toEqual(['tmp']);
    expect(mountsUnder(root)).toEqual([join(root, 'tmp'), join(root, 'tmp', 'x')]);
    execFileSync('umount', [join(root, 'tmp', 'x')]);
    detach(rootFd, failure.remaining!);
    expect(mountsUnder(root)).toEqual([]);
  });
});

describe('cut short', () => {
  it('undoes from the record a teardown stopped between its moves and its umount2', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const store = new RecordStore(stateDir);
    mountRecorded(rootFd, defaultPlan(), { records: store, key: 'k', existing: 'refuse' });
    // What detachTogether does before its one umount2: tmp, then sys, moved onto proc's sys cover.
    using cover = openat2(rootFd, 'proc/sys', { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: C.RESOLVE_IN_ROOT });
    for (const target of ['sys', 'tmp']) {
      using mount = openat2(rootFd, target, { flags: C.O_PATH | C.O_CLOEXEC, resolve: C.RESOLVE_IN_ROOT });
      moveMountOntoFd(mount, cover);
    }
    const report = MountedRoot.fromRecord(rootFd, store, 'k')!.tearDown();
    expect(report.notMounted).toEqual([]);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('undoes from the record an attach whose process was SIGKILLed after any of its record writes', () => {
    const before = mountTable();
    const plan = JSON.stringify({
      mounts: [
        { target: 'proc', kind: 'proc' },
        { target: 'sys', kind: 'sysfs' },
        { target: 'a/tmp', kind: 'tmpfs' },
      ],
    });
    // A child in this namespace attaches through the built engine and kills itself right after
    // its record's n-th write: everything made by then must be in the record.
    const child = (n: number) => `
      import { mountRecorded, parsePlan, RecordStore } from ${JSON.stringify(join(repo, 'dist', 'mounts', 'index.js'))};
      import { BorrowedFd } from ${JSON.stringify(join(repo, 'dist', 'linux', 'index.js'))};
      import { openSync } from 'node:fs';
      const store = new RecordStore(${JSON.stringify(stateDir)});
      let writes = 0;
      const records = { load: (k) => store.load(k), remove: (k) => store.remove(k), pathFor: (k) => store.pathFor(k), journal: (k) => {
        const journal = store.journal(k);
        return { append: (line) => { journal.append(line); if (++writes === ${n}) process.kill(process.pid, 'SIGKILL'); }, close: () => journal.close() };
      } };
      const root = new BorrowedFd(openSync(${JSON.stringify(root)}, 'r'));
      mountRecorded(root, parsePlan(${plan}), { records, key: 'k', existing: 'replace' });
      process.exit(3);`;
    let killed = 0;
    for (let n = 1; ; n++) {
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', child(n)], { encoding: 'utf8' });
      if (result.status === 3) break;
      expect(result.signal, result.stderr).toBe('SIGKILL');
      killed++;
      using rootFd = openDir(root);
      MountedRoot.fromRecord(rootFd, new RecordStore(stateDir), 'k')?.tearDown();
      new RecordStore(stateDir).remove('k');
      expect(mountTable(), `after a kill at write ${n}`).toBe(before);
      expect(readdirSync(root).sort(), `after a kill at write ${n}`).toEqual(['bin', 'usr']);
    }
    expect(killed).toBeGreaterThan(2);
    // The run that was not killed left everything mounted and recorded.
    using rootFd = openDir(root);
    MountedRoot.fromRecord(rootFd, new RecordStore(stateDir), 'k')!.tearDown();
    expect(mountTable()).toBe(before);
  });
});
