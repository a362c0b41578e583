// The OCI hook's stages in-process, where a record write must fail at one exact step: the store
// wraps the real one and throws there (the only fake); the mounts and the root are real.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { messageOf } from '../src/base/index.js';
import { RecordStore, type Attachment, type RecordKeeping } from '../src/mounts/index.js';
import { runStage, type OciState } from '../src/oci/index.js';
import type { HookLog } from '../src/oci/log.js';
import { overriding } from './helpers/checked.js';
import { busyboxRoot, mountTable, openDir, removeTree, scratchDir } from './helpers/roots.js';

let dir: string;
let root: string;
let stateDir: string;
beforeEach(() => {
  // The root on a bind mount of its own, so that it can be made read-only (EROFS): the real way
  // to make the undo of the mounts fail to remove the directories it created.
  dir = scratchDir('mountat-stages-');
  execFileSync('mount', ['--bind', dir, dir]);
  root = join(dir, 'rootfs');
  execFileSync('mv', [busyboxRoot(), root]);
  stateDir = scratchDir('mountat-stages-state-');
});
afterEach(() => {
  execFileSync('umount', [dir]);
  removeTree(dir);
  removeTree(stateDir);
});

const silent: HookLog = { info() {}, warn() {}, flush() {} };

/** The real store; the write that records every mount of the plan (save or journal line) makes the root read-only, then fails. */
function failingStore(store: RecordStore, mounts: number): RecordKeeping & Pick<RecordStore, 'save'> {
  const fails = (attachment: Attachment) => {
    if (attachment.mounts.length < mounts) return;
    execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
    throw new Error('write: ENOSPC (no space left on the state directory)');
  };
  return {
    load: (key) => store.load(key),
    remove: (key) => store.remove(key),
    pathFor: (key) => store.pathFor(key),
    save: (key, attachment) => (fails(attachment), store.save(key, attachment)),
    journal: (key) => {
      const journal = store.journal(key);
      return overriding(journal, { append: (line: Attachment & Record<string, unknown>) => (fails(line), journal.append(line)), close: () => journal.close() });
    },
  };
}

it('createContainer: a record write that fails is not hidden by the undo that fails after it', async () => {
  const table = mountTable();
  using rootFd = openDir(root);
  const state: OciState = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 1, bundle: dir, annotations: { 'org.mountat.mounts': 'proc,tmp' } };
  let error: unknown;
  try {
    await runStage('createContainer', state, { rootFd: rootFd.fd, records: failingStore(new RecordStore(stateDir), 2), log: silent });
  } catch (caught) {
    error = caught;
  }
  execFileSync('mount', ['-o', 'remount,bind,rw', dir]);
  expect(messageOf(error)).toMatch(/write: ENOSPC \(no space left on the state directory\)/);
  expect(messageOf(error)).toMatch(/; rollback also failed: .*EROFS.* \(what is left is recorded in .*oci-c1\.json for poststop\)$/);
  expect(mountTable()).toBe(table);
  // What the undo could not remove is still recorded, and poststop takes it from there.
  expect(readdirSync(stateDir)).toEqual(['oci-c1.json']);
  const cleaned = await runStage('poststop', { ...state, status: 'stopped' }, { rootFd: rootFd.fd, stateDir, log: silent });
  expect(cleaned.summary).toMatch(/removed directories proc, tmp$/);
  expect(readdirSync(stateDir)).toEqual([]);
  expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
});
