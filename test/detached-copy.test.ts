// A plan attached to a detached copy of the root (src/mounts/detached-copy.ts, the runner's way):
// the copy has every mount, the namespace and the original's peers none at any time, even where
// the root is on a shared mount; closing the copy takes them all, and the teardown is the
// directories made. A failure half-way is not rolled back on the copy: its owner removes what was
// made once the copy is closed. The starter attaches such a copy as it is (--root-copy).
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants as C, openat2, type FdRef } from '../src/linux/index.js';
import { defaultPlan, kernelMountsOntoDetachedTrees, mountRecorded, openDetachedCopy, RecordStore } from '../src/mounts/index.js';
import { busyboxRoot, mountTable, mountsUnder, openDir, removeTree, repo, scratchDir } from './helpers/roots.js';

const PROC_SUPER_MAGIC = 0x9fa0n;

let root: string;
let stateDir: string;
beforeEach(() => {
  root = busyboxRoot();
  stateDir = scratchDir('mountat-copy-state-');
});
afterEach(() => {
  removeTree(root);
  removeTree(stateDir);
});

/** The filesystem magic of `path` beneath `dirfd` (statfs by an O_PATH fd, as stat -f does). */
function fsTypeBeneath(dirfd: FdRef, path: string): bigint {
  using fd = openat2(dirfd, path, { flags: C.O_PATH | C.O_CLOEXEC, resolve: C.RESOLVE_IN_ROOT | C.RESOLVE_NO_SYMLINKS });
  return BigInt(`0x${execFileSync('stat', ['-f', '-c', '%t', `/proc/${process.pid}/fd/${fd.fd}`], { encoding: 'utf8' }).trim()}`);
}

describe('a plan on a detached copy of the root', () => {
  it('is seen through the copy only: never in this namespace, nor at the original root, nor at its shared peers', async () => {
    expect(kernelMountsOntoDetachedTrees()).toBe(true);
    // The root on a shared mount with a peer elsewhere (systemd makes "/" shared): a copy that
    // were a peer of it would propagate every mount to both.
    execFileSync('mount', ['--bind', root, root]);
    execFileSync('mount', ['--make-shared', root]);
    const peer = scratchDir('mountat-copy-peer-');
    execFileSync('mount', ['--bind', root, peer]);
    try {
      const before = mountTable();
      using rootFd = openDir(root);
      const copy = openDetachedCopy(rootFd);
      const store = new RecordStore(stateDir);
      const attempt = mountRecorded(copy, defaultPlan(), { records: store, key: 'k', existing: 'refuse', copyOf: rootFd });
      const mounted = attempt.mounted!;
      expect(attempt.error).toBeUndefined();
      expect(mounted.attachment.mounts.map((mount) => mount.target)).toEqual(['proc', 'sys', 'tmp']);
      // The copy has proc (with its covers: proc/sys read-only) ...
      expect(fsTypeBeneath(copy, 'proc')).toBe(PROC_SUPER_MAGIC);
      {
        // This process's own status, through the copy's proc.
        using status = openat2(copy, `proc/${process.pid}/status`, { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: 0 });
        expect(readFileSync(`/proc/self/fd/${status.fd}`, 'utf8')).toMatch(new RegExp(`^Pid:\\s+${process.pid}$`, 'm'));
      }
      // ... while neither this namespace nor the original root nor its peer has anything of it.
      expect(mountTable()).toBe(before);
      expect(mountsUnder(root)).toEqual([root]);
      expect(mountsUnder(peer)).toEqual([peer]);
      expect(fsTypeBeneath(rootFd, 'proc')).not.toBe(PROC_SUPER_MAGIC);
      expect(readdirSync(join(peer, 'proc'))).toEqual([]);
      // The directories made for the mounts are the original's (one filesystem): they stay until
      // the copy is closed, and the teardown then removes them and the record.
      expect(readdirSync(root).sort()).toEqual(['bin', 'proc', 'sys', 'tmp', 'usr']);
      await copy.closeAsync();
      const report = await mounted.tearDownAsync();
      expect(report.notMounted).toEqual(['tmp', 'sys', 'proc']);
      expect(report.removed.sort()).toEqual(['proc', 'sys', 'tmp']);
      expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
      expect(readdirSync(stateDir)).toEqual([]);
      expect(mountTable()).toBe(before);
    } finally {
      execFileSync('umount', [peer]);
      execFileSync('umount', [root]);
      removeTree(peer);
    }
  });

  it('is not rolled back when an entry fails: the owner it leaves removes what was made once the copy is closed', async () => {
    // proc and sys are made; tmp is a symlink, which the engine never mounts over.
    symlinkSync('/etc', join(root, 'tmp'));
    const before = mountTable();
    using rootFd = openDir(root);
    const copy = openDetachedCopy(rootFd);
    const store = new RecordStore(stateDir);
    const attempt = mountRecorded(copy, defaultPlan(), { records: store, key: 'k', existing: 'refuse', copyOf: rootFd });
    expect(attempt.mounted).toBeUndefined();
    expect(attempt.error?.message).toMatch(/tmp/);
    expect(attempt.error?.message).not.toMatch(/rollback/);
    // Nothing rolled back: proc is still on the copy, its directory still in the root.
    expect(fsTypeBeneath(copy, 'proc')).toBe(PROC_SUPER_MAGIC);
    expect(readdirSync(stateDir)).toEqual(['k.json']);
    await copy.closeAsync();
    await attempt.leftover!.tearDownAsync();
    expect(readdirSync(root).sort()).toEqual(['bin', 'tmp', 'usr']);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(mountTable()).toBe(before);
  });
});

describe('the starter with --root-copy', () => {
  // Its way with a copy is shown through the runner (test/runner.test.ts: each action's mounts
  // are in its own namespace, none in the runner's); here, the refusal.
  it('refuses it without a root, in one line', () => {
    const refused = spawnSync(join(repo, 'dist', 'mountat-action'), ['--root', 'none', '--root-copy', '--caps', '0', '--', '/bin/true'], { encoding: 'utf8' });
    expect(refused.status).toBe(126);
    expect(refused.stderr.trim()).toBe('mountat-action: --root-copy needs a root');
  });
});
