// The same harmless attacks as test/containment.test.ts, run under the peers docs/containment.md's table
// "what an action can and cannot do" compares with: a plain chroot as root (what bb_runner does)
// and bubblewrap as root with the flags of a typical call (--proc, --ro-bind /sys, --tmpfs /tmp,
// --unshare-pid). Each outcome asserted here is a cell of that table. Only attacks that change
// nothing outside this test's own namespaces are made: no sysctl is written, no host renamed.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installAttacker, rootDevice } from './helpers/attacker.js';
import { busyboxRoot, mountTable, removeTree, scratchDir } from './helpers/roots.js';

const SCRIPT = (secret: string) =>
  [
    `attacker chroot-escape ${secret}`,
    // A read-only mount, in the test's own mount namespace: it changes nothing outside.
    `attacker mknod-mount ${rootDevice().join(' ')} ${secret}`,
    `attacker userns-escape ${secret}`,
    'attacker handle',
    'attacker fds | cut -d" " -f1',
    'test -w /proc/sys/kernel/core_pattern && echo "core_pattern writable" || echo "core_pattern read-only"',
    'echo "keys: $(head -c 64 /proc/keys 2>/tmp/err | wc -c)"',
    'hostname peer-renamed 2>/tmp/err && echo "hostname changed" || echo "hostname refused"',
    'grep -E "^(CapEff|NoNewPrivs)" /proc/self/status',
  ].join('; ');

let root: string;
let outside: string;
let secret: string;
let fd: number;
let tableBefore: string;
beforeAll(() => {
  tableBefore = mountTable();
  root = busyboxRoot();
  installAttacker(root);
  for (const dir of ['proc', 'sys', 'tmp']) mkdirSync(join(root, dir));
  outside = scratchDir('mountat-peer-outside-');
  secret = join(outside, 'secret');
  writeFileSync(secret, 'peer-secret\n');
  fd = openSync(outside, 'r');
});
afterAll(() => {
  closeSync(fd);
  expect(mountTable()).toBe(tableBefore);
  removeTree(root);
  removeTree(outside);
});

/** A command in UTS and mount namespaces of this test's own (so a hostname or a mount changes nothing of the host's), with fd 3 open. */
function peer(command: string[]): string[] {
  const result = spawnSync('unshare', ['--uts', '--mount', '--propagation', 'private', ...command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe', fd],
  });
  expect(result.stderr).toBe('');
  return result.stdout.trim().split('\n');
}

/**
 * The last lines of SCRIPT as both peers leave them to a root action: out by file handle, the fd
 * kept, core_pattern writable, the host's keys readable, the hostname changed, every capability.
 */
function leftOpenToRoot(): unknown[] {
  return [
    "ESCAPED: opened the filesystem's root by handle",
    'ESCAPED:',
    'core_pattern writable',
    expect.stringMatching(/^keys: [1-9]/),
    'hostname changed',
    expect.stringMatching(/^CapEff:\t000001ffff?[0-9a-f]+$/),
  ];
}

describe('what the peers let an action do', () => {
  it("a plain chroot as root (bb_runner): out by chroot, by handle and by the host's disk, fds and every capability kept", () => {
    const lines = peer(['sh', '-c', `mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c '${SCRIPT(secret)}'`, 'peer', root]);
    expect(lines).toEqual([
      'ESCAPED: read peer-secret',
      'ESCAPED: read peer-secret',
      // The kernel refuses a chrooted process a user namespace; it needs none, being out already.
      'blocked: unshare user+mount namespace: EPERM',
      ...leftOpenToRoot(),
      'NoNewPrivs:\t0',
    ]);
  });

  it('bubblewrap as root with --proc, --ro-bind /sys, --tmpfs /tmp, --unshare-pid: in its root, but by handle out, fds, writable sysctls, every capability', () => {
    const lines = peer([
      'bwrap',
      '--bind',
      root,
      '/',
      '--proc',
      '/proc',
      '--ro-bind',
      '/sys',
      '/sys',
      '--tmpfs',
      '/tmp',
      '--unshare-pid',
      '/bin/sh',
      '-c',
      SCRIPT(secret),
    ]);
    expect(lines).toEqual([
      'blocked: the file outside is not reachable: ENOENT',
      // The node is made, but the root is bound nodev.
      'blocked: mount the disk: EACCES',
      'blocked: the file outside is not reachable: ENOENT',
      ...leftOpenToRoot(),
      'NoNewPrivs:\t1',
    ]);
  });
});
