// The same harmless attacks as test/containment.test.ts, run under the peers docs/containment.md's table
// "what an action can and cannot do" compares with: a plain chroot as root (what bb_runner does),
// bubblewrap as root with the flags of a typical call (--proc, --ro-bind /sys, --tmpfs /tmp,
// --unshare-pid), and bubblewrap hardened as far as its options go (the same and --unshare-all
// --unshare-user --share-net --disable-userns --cap-drop ALL). Each outcome asserted here is a
// cell of that table: an "ESCAPED" line is what the peer lets through. Only attacks that change
// nothing outside this test's own namespaces, or that are undone at once, are made: no sysctl is
// written, no host renamed, a key added to host root's @u is removed again. The two that use up a
// per-uid limit for a moment (the key quota, inotify instances) run as a uid of their own, never
// as root, whose limits other tests check.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackerBinary, hostInotifyInstances, hostKey, installAttacker, keyQuotaBytes, rootDevice } from './helpers/attacker.js';
import { busyboxRoot, firmwareTableHere, mountTable, removeTree, scratchDir } from './helpers/roots.js';

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

// A key in host root's user keyring (@u), there only while a peer runs: the keyring attacks look for it.
const rootKey = { description: `mountat-peer-root-${process.pid}`, data: `peer-root-secret-${process.pid}-${Date.now()}` };
// The session keyring each peer is started under (as a runner's would be), with a key in it.
const sessionKey = { description: `mountat-peer-session-${process.pid}`, data: `peer-session-secret-${Date.now()}` };
// A key the action adds to its @u and leaves there: the host then looks for it in its root's.
const leftKey = `mountat-peer-left-${process.pid}`;
// Whom the attacks that use up a per-uid limit run as: a uid no other test uses.
const USER = 4343;

/**
 * The attacks on keyrings, user namespaces, the calls a seccomp filter would refuse and what an
 * action learns of the host; each harmless, or undone at once, should it get through.
 */
const KERNEL_SCRIPT = () =>
  [
    `attacker keyring-read ${rootKey.description}`,
    'attacker keyring-add',
    `attacker host-key add ${leftKey} left-by-the-action`,
    'attacker session-keyring',
    'attacker userns',
    ...['io-uring', 'personality', 'bpf', 'perf', 'userfaultfd', 'cgroup', 'firmware'].map((mode) => `attacker ${mode}`),
    `md5sum /sys/firmware/${firmwareTableHere()!}`,
    'attacker key-users',
    'grep ^Seccomp: /proc/self/status',
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
  // Reachable by USER, for whom bubblewrap hardened is started (it binds the root as that user).
  chmodSync(root, 0o755);
  // Where the inotify attack, as USER, says it is ready and learns it may let go.
  mkdirSync(join(root, 'hold'));
  chownSync(join(root, 'hold'), USER, USER);
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

/** `command` in UTS and mount namespaces of this test's own (so a hostname or a mount changes nothing of the host's), with fd 3 open. */
function inOwnNamespaces(command: string[]): string[] {
  return ['unshare', '--uts', '--mount', '--propagation', 'private', ...command];
}

/** Run a peer's command to its end; its output lines (it must write nothing to stderr). */
function peer(command: string[], options: { sessionKey?: boolean } = {}): string[] {
  let argv = inOwnNamespaces(command);
  // Under a session keyring of the test's own, holding a key, as a runner would start actions.
  if (options.sessionKey) argv = [attackerBinary(), 'with-session-key', sessionKey.description, sessionKey.data, '--', ...argv];
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', fd] });
  expect(result.stderr).toBe('');
  return result.stdout.trim().split('\n');
}

/** A peer: how it runs a shell script as root, and the attacker as another uid. */
interface Peer {
  name: string;
  asRoot: (script: string) => string[];
  asUser: (uid: number, attacker: string[]) => string[];
}

/** bb_runner's way: chroot into the input root as root (a proc mounted there, which a root action could mount itself). */
const chroot: Peer = {
  name: 'a plain chroot as root (bb_runner)',
  asRoot: (script) => ['sh', '-c', 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"', 'peer', root, script],
  // As bb_runner's runCommandsAs: the switch made inside, after the chroot.
  asUser: (uid, attacker) => chroot.asRoot(`attacker setuid ${uid} -- attacker ${attacker.join(' ')}`),
};

const bwrapFlags = () => ['--bind', root, '/', '--proc', '/proc', '--ro-bind', '/sys', '/sys', '--tmpfs', '/tmp', '--unshare-pid'];
const bwrap: Peer = {
  name: 'bubblewrap as root with --proc, --ro-bind /sys, --tmpfs /tmp, --unshare-pid',
  asRoot: (script) => ['bwrap', ...bwrapFlags(), '/bin/sh', '-c', script],
  // Started as root, as the table's bubblewrap is; the action switches uid inside (it keeps every capability).
  asUser: (uid, attacker) => bwrap.asRoot(`attacker setuid ${uid} -- attacker ${attacker.join(' ')}`),
};

// --unshare-all alone leaves --disable-userns refused ("requires --unshare-user"): it only tries a
// user namespace, and bubblewrap checks the flags before it decides.
const HARDENED = ['--unshare-all', '--unshare-user', '--share-net', '--disable-userns', '--cap-drop', 'ALL'];
const hardened: Peer = {
  name: 'bubblewrap hardened: --unshare-all --unshare-user --share-net --disable-userns --cap-drop ALL, as root',
  asRoot: (script) => ['bwrap', ...bwrapFlags(), ...HARDENED, '/bin/sh', '-c', script],
  // Its uid 0 inside can switch to no other: bubblewrap itself is started as the uid, and maps it to itself.
  asUser: (uid, attacker) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...hardened.asRoot(`attacker ${attacker.join(' ')}`)],
};

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
    const lines = peer(chroot.asRoot(SCRIPT(secret)));
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
    const lines = peer(bwrap.asRoot(SCRIPT(secret)));
    expect(lines).toEqual([
      'blocked: the file outside is not reachable: ENOENT',
      // The node is made, but the root is bound nodev.
      'blocked: mount the disk: EACCES',
      'blocked: the file outside is not reachable: ENOENT',
      ...leftOpenToRoot(),
      'NoNewPrivs:\t1',
    ]);
  });

  it('bubblewrap hardened, as root: in its root, no capability, no user namespace; the fd kept, sysctls writable by mode, /proc/keys read', () => {
    const lines = peer(hardened.asRoot(SCRIPT(secret)));
    expect(lines).toEqual([
      'blocked: chroot: EPERM',
      'blocked: mknod: EPERM',
      // --disable-userns: user.max_user_namespaces is 0 in its user namespace.
      'blocked: unshare user+mount namespace: ENOSPC',
      'blocked: open_by_handle_at: EPERM',
      'ESCAPED:',
      // Its uid 0 is the host's (mapped to itself), and a sysctl checks the file's mode only.
      'core_pattern writable',
      expect.stringMatching(/^keys: [1-9]/),
      'hostname refused',
      'CapEff:\t0000000000000000',
      'NoNewPrivs:\t1',
    ]);
  });
});

/**
 * KERNEL_SCRIPT in a peer as root, started under the session keyring with sessionKey, with
 * rootKey in host root's @u meanwhile; what host root's @u holds after (rootKey, the key the action
 * left), both removed again.
 */
function kernelAttacks(command: (script: string) => string[]): { lines: string[]; rootKeyAfter: string; leftKeyAfter: string } {
  hostKey.add(rootKey.description, rootKey.data);
  try {
    const lines = peer(command(KERNEL_SCRIPT()), { sessionKey: true });
    return { lines, rootKeyAfter: hostKey.read(rootKey.description), leftKeyAfter: hostKey.read(leftKey) };
  } finally {
    hostKey.remove(rootKey.description);
    hostKey.remove(leftKey);
  }
}

/** The first line of /proc/self/cgroup that names a path, as the attacker quotes it: the test's own, which a peer's action shares. */
function cgroupOfThisTest(): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((entry) => entry !== '' && entry.split(':').slice(2).join(':') !== '/');
  return line === undefined ? 'blocked: /proc/self/cgroup shows only /' : `ESCAPED: /proc/self/cgroup names ${line}`;
}

/** The last lines of KERNEL_SCRIPT as every peer leaves them: a firmware table read (the same bytes as the host's), every user's key quota, no seccomp filter. */
function hostViewAndNoFilter(): unknown[] {
  return [
    expect.stringMatching(/^ESCAPED: read \/sys\/firmware\/\S+$/),
    execFileSync('md5sum', [`/sys/firmware/${firmwareTableHere()!}`], { encoding: 'utf8' }).trim(),
    expect.stringMatching(/^ESCAPED: \/proc\/key-users lists 0: +\d+ \d+\/\d+ \d+\/\d+ \d+\/\d+$/),
    'Seccomp:\t0',
  ];
}

const readRootKey = `ESCAPED: read the key ${rootKey.description} ("${rootKey.data}") through @u @us persistent, linked into a session keyring of its own`;
const addedToU = 'ESCAPED: added a key to the user keyring (@u) of uid 0, where the host and later actions find it';
const sessionKeyringTaken = [
  `ESCAPED: read the session keyring it inherited: ${sessionKey.description} ("${sessionKey.data}")`,
  'ESCAPED: cleared the session keyring it inherited',
];
const seccompCallsThrough = [
  'ESCAPED: io_uring_setup made an io_uring',
  'ESCAPED: personality(READ_IMPLIES_EXEC) took: /proc/self/personality 00400000',
  'ESCAPED: bpf(BPF_MAP_CREATE) made a map',
  'ESCAPED: bpf(BPF_PROG_LOAD) loaded a program',
  'ESCAPED: perf_event_open opened a counter',
  'ESCAPED: userfaultfd made a userfaultfd',
];

describe("what the peers let an action do with the kernel's keyrings, user namespaces and calls, as root", () => {
  it("a plain chroot (bb_runner): host root's keys read and added to, the session keyring read and cleared, every call, the host's cgroup, firmware and key users", () => {
    // bb_runner mounts no sysfs: a root action mounts one itself (in this test's mount namespace).
    const { lines, rootKeyAfter, leftKeyAfter } = kernelAttacks((script) => chroot.asRoot(`mount -t sysfs sysfs /sys && ${script}`));
    expect(lines).toEqual([
      readRootKey,
      addedToU,
      ...sessionKeyringTaken,
      // The kernel refuses a chrooted process a user namespace.
      'blocked: unshare(CLONE_NEWUSER): EPERM',
      'blocked: clone(CLONE_NEWUSER): EPERM',
      'blocked: clone3(CLONE_NEWUSER): EPERM',
      ...seccompCallsThrough,
      cgroupOfThisTest(),
      ...hostViewAndNoFilter(),
    ]);
    expect(rootKeyAfter).toBe(rootKey.data);
    // The key it left is in host root's @u.
    expect(leftKeyAfter).toBe('left-by-the-action');
  });

  it("bubblewrap with the table's flags: the same, and user namespaces too", () => {
    const { lines, rootKeyAfter, leftKeyAfter } = kernelAttacks(bwrap.asRoot);
    expect(lines).toEqual([
      readRootKey,
      addedToU,
      ...sessionKeyringTaken,
      'ESCAPED: unshare(CLONE_NEWUSER) made a user namespace',
      'ESCAPED: clone(CLONE_NEWUSER) made a child in a user namespace',
      'ESCAPED: clone3(CLONE_NEWUSER) made a child in a user namespace',
      ...seccompCallsThrough,
      cgroupOfThisTest(),
      ...hostViewAndNoFilter(),
    ]);
    expect(rootKeyAfter).toBe(rootKey.data);
    expect(leftKeyAfter).toBe('left-by-the-action');
  });

  it('bubblewrap hardened: keyrings of its own user namespace, no user namespace, no bpf, a cgroup namespace; the session keyring, io_uring, personality, perf, userfaultfd, firmware and key users still', () => {
    // What an unprivileged process may do here: the cells below hold for these settings (this machine's).
    const sysctl = (name: string) => readFileSync(`/proc/sys/kernel/${name}`, 'utf8').trim();
    expect([sysctl('io_uring_disabled'), sysctl('unprivileged_bpf_disabled'), sysctl('perf_event_paranoid')]).toEqual(['0', '2', '2']);
    const { lines, rootKeyAfter, leftKeyAfter } = kernelAttacks(hardened.asRoot);
    expect(lines).toEqual([
      // It links @u, @us and a persistent keyring: its user namespace's own, without host root's key.
      `blocked: find the host's key through them: ENOKEY`,
      // Added to the @u of its user namespace's uid 0, not host root's (below).
      addedToU,
      // A session keyring is not left behind by a new user namespace.
      ...sessionKeyringTaken,
      'blocked: unshare(CLONE_NEWUSER): ENOSPC',
      'blocked: clone(CLONE_NEWUSER): ENOSPC',
      'blocked: clone3(CLONE_NEWUSER): ENOSPC',
      'ESCAPED: io_uring_setup made an io_uring',
      'ESCAPED: personality(READ_IMPLIES_EXEC) took: /proc/self/personality 00400000',
      // unprivileged_bpf_disabled 2, and no CAP_BPF.
      'blocked: bpf(BPF_MAP_CREATE): EPERM',
      'blocked: bpf(BPF_PROG_LOAD): EPERM',
      // perf_event_paranoid 2 lets anyone count its own task in user space.
      'ESCAPED: perf_event_open opened a counter',
      'ESCAPED: userfaultfd made a userfaultfd',
      'blocked: /proc/self/cgroup shows only /',
      ...hostViewAndNoFilter(),
    ]);
    expect(rootKeyAfter).toBe(rootKey.data);
    expect(leftKeyAfter).toBe('none: ENOKEY');
  });
});

describe(`what the peers let an action use up of its uid's limits, shared with the host's user of that uid (as ${USER})`, () => {
  const peers = [chroot, bwrap, hardened];

  it.each(peers)("$name: fills its uid's key quota, the host's user's share included", async (p) => {
    // The host's USER holds a key of 10,000 bytes meanwhile: an action with a quota of its own could still take all of it.
    const held = { description: `mountat-peer-held-${process.pid}`, data: 'h'.repeat(10_000) };
    const max = Number(readFileSync('/proc/sys/kernel/keys/maxbytes', 'utf8'));
    // The kernel frees the keys of an attack before (cleared, or gone with their keyring) a moment later.
    for (let i = 0; i < 50 && keyQuotaBytes(USER) > 256; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    hostKey.add(held.description, held.data, USER);
    try {
      const lines = peer(p.asUser(USER, ['keyring-quota']));
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^ESCAPED: filled the key quota of uid ${USER}: \\d+ keys, \\d+ bytes, then EDQUOT$`))]);
      const bytes = Number(/ (\d+) bytes/.exec(lines[0]!)?.[1]);
      // All that the host's key left of the quota (less the keyrings' and descriptions' own bytes), and no more.
      expect(bytes).toBeLessThanOrEqual(max - held.data.length);
      expect(bytes).toBeGreaterThan(max - held.data.length - 256);
    } finally {
      hostKey.remove(held.description, USER);
    }
  });

  it.each(peers)("$name: holds every inotify instance of its uid: the host's user of that uid has none left", async (p) => {
    const hold = join(root, 'hold');
    rmSync(join(hold, 'ready'), { force: true });
    rmSync(join(hold, 'release'), { force: true });
    const argv = inOwnNamespaces(p.asUser(USER, ['inotify-hold', '/hold/ready', '/hold/release']));
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let host: number;
    try {
      for (let i = 0; i < 250 && spawnSync('test', ['-e', join(hold, 'ready')]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      host = hostInotifyInstances(USER, 16);
    } finally {
      writeFileSync(join(hold, 'release'), '');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^holding [1-9]\d* inotify instances, then EMFILE\n$/);
    expect(host).toBe(0);
    // And back once it lets go.
    expect(hostInotifyInstances(USER, 16)).toBe(16);
  });
});
