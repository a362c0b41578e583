// What an error half-way through leaves: no fd, no mount. The failure is the kernel's, made on
// purpose by a seccomp filter (test/fixtures/seccomp-errno.c) failing the statx calls of one mask
// with EIO, in a child process running the engine (test/fixtures/statx-error-paths.mjs).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { fixtureBinary } from './helpers/attacker.js';
import { parseJson } from './helpers/checked.js';
import { busyboxRoot, mountsUnder, removeTree, repo } from './helpers/roots.js';

const STATX_INO = 0x100;
const STATX_MNT_ID = 0x1000;
const STATX_MNT_ID_UNIQUE = 0x4000;

let root: string;
beforeEach(() => {
  root = busyboxRoot();
});
afterEach(() => {
  // A mount the engine failed to undo would block the removal: take it off by hand first.
  for (const point of mountsUnder(root).reverse()) execFileSync('umount', [point]);
  removeTree(root);
});

function runWithStatxFailing(mask: number, which: string): { before: number; after: number; error?: string } {
  const result = spawnSync(
    fixtureBinary('seccomp-errno'),
    ['statx', 'EIO', `0x${mask.toString(16)}`, '--', process.execPath, join(repo, 'test', 'fixtures', 'statx-error-paths.mjs'), which, root],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`statx-error-paths ${which} exited ${result.status}: ${result.stderr}`);
  return parseJson(result.stdout);
}

it('identity: an isOurMount that throws closes the fd it was given to look at', () => {
  const { before, after, error } = runWithStatxFailing(STATX_MNT_ID_UNIQUE, 'identity');
  expect(error).toMatch(/statx.*EIO/);
  expect(after).toBe(before);
});

it('resolve: a statx that throws after a mkdir closes the directory it opened', () => {
  const { before, after, error } = runWithStatxFailing(STATX_INO, 'resolve');
  expect(error).toMatch(/statx.*EIO/);
  expect(after).toBe(before);
});

it('attach: a mount id that cannot be read leaves nothing mounted (it is read before move_mount)', () => {
  const { error } = runWithStatxFailing(STATX_MNT_ID, 'attach');
  expect(error).toMatch(/statx.*EIO/);
  expect(mountsUnder(root)).toEqual([]);
  expect(existsSync(join(root, 'made'))).toBe(false);
});
