// Attacks, run as the action, through a real runner over its socket (as root, and as
// runCommandsAs) and through `mountat exec`: each must be blocked, and the runner's mount
// table, the host's hostname and the files outside the root must be as they were, and so must
// host root's keys and key quota, the runner's session keyring and the host's inotify
// instances. The same suite shows that ordinary build work still works. Keep the list growing.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attackerBinary, fixtureBinary, hostInotifyInstances, hostKey, installAttacker, rootDevice } from './helpers/attacker.js';
import { mountat, mountatArgv } from './helpers/cli.js';
import {
  actionPlanMounts,
  busyboxRoot,
  defaultPlanMountCount,
  mountTable,
  mountsUnder,
  processWith,
  removeTree,
  repo,
  scratchDir,
  sleepMark,
} from './helpers/roots.js';
import { INHERITED_FD, makeAction, requestFor, run, runInFullUserland, startRunner, type RunnerProcess } from './helpers/runner.js';

// The default set, as /proc/PID/status shows it: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP.
const DEFAULT_CAPS = '00000000000001fb';
const NO_CAPS = '0000000000000000';

let outside: string;
let secret: string;
let secretText: string;
let tableBefore: string;
let hostnameBefore: string;
let inheritedDir: number;
let corePattern: string;
// A key in host root's user keyring (@u), put there before any attack: no action may read or remove it.
const rootKey = { description: `mountat-host-root-${process.pid}`, data: `root-secret-${process.pid}-${Date.now()}` };

beforeAll(() => {
  attackerBinary();
  tableBefore = mountTable();
  hostnameBefore = hostname();
  corePattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
  outside = scratchDir('mountat-outside-');
  secret = join(outside, 'secret');
  secretText = `secret-${process.pid}-${Date.now()}`;
  writeFileSync(secret, `${secretText}\n`, { mode: 0o600 });
  // A directory fd without CLOEXEC, as a careless parent of the runner might leave open.
  inheritedDir = openSync(outside, 'r');
  hostKey.add(rootKey.description, rootKey.data);
});

afterAll(() => {
  closeSync(inheritedDir);
  try {
    expectHostUnchanged();
    removeTree(outside);
  } finally {
    hostKey.remove(rootKey.description);
  }
});

/**
 * The keys of `uid` and its key quota as the host's /proc/key-users counts them ("keys/instantiated
 * quota-keys/max quota-bytes/max"), once it is `expected` or has stopped changing (the kernel frees
 * an unlinked key a moment later), within 5 s.
 */
async function keyUsage(uid: number, expected?: string): Promise<string> {
  const read = () =>
    readFileSync('/proc/key-users', 'utf8')
      .split('\n')
      .find((entry) => entry.trim().startsWith(`${uid}:`))
      ?.trim()
      .split(/\s+/)
      .slice(2)
      .join(' ') ?? 'none';
  let last = read();
  for (let i = 0; i < 50 && last !== expected; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = read();
    if (expected === undefined && now === last) break;
    last = now;
  }
  return last;
}

/** The runner's session keyring and its key, as the host's /proc/keys shows them: "<keys in the keyring> <payload length>". */
function sessionKeyState(description: string): string {
  const keys = readFileSync('/proc/keys', 'utf8');
  const ring = new RegExp(`keyring\\s+${description}-session: (\\S+)$`, 'm').exec(keys)?.[1];
  const key = new RegExp(`user\\s+${description}: (\\d+)$`, 'm').exec(keys)?.[1];
  return `${ring ?? 'no keyring'} ${key ?? 'no key'}`;
}

let counter = 0;
/** An action directory with busybox and the attacker in its input root; its tmp the action's own, as the worker leaves it. */
function attackAction(runner: RunnerProcess, as: Identity = asRoot): string {
  const id = `x${++counter}`;
  makeAction(runner.build, id);
  installAttacker(join(runner.build, id, 'root'));
  as.own(join(runner.build, id, 'tmp'));
  return id;
}

async function runScript(runner: RunnerProcess, script: string, as: Identity = asRoot): Promise<{ exitCode: string; stdout: string; stderr: string }> {
  const id = attackAction(runner, as);
  const response = await run(runner.client, requestFor(id, script));
  return {
    exitCode: response.exitCode,
    stdout: readFileSync(join(runner.build, id, 'stdout'), 'utf8'),
    stderr: readFileSync(join(runner.build, id, 'stderr'), 'utf8'),
  };
}

function statusField(text: string, field: string): string | undefined {
  return new RegExp(`^${field}:\\s*(\\S+)$`, 'm').exec(text)?.[1];
}

/** The four ids of a Uid: or Gid: line of /proc/PID/status. */
function ids(text: string, field: 'Uid' | 'Gid'): string[] | undefined {
  return new RegExp(`^${field}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)$`, 'm').exec(text)?.slice(1);
}

/** Until the action has created `<id>/tmp/ready`, or 5 s. */
async function untilReady(runner: RunnerProcess, id: string): Promise<void> {
  const ready = join(runner.build, id, 'tmp', 'ready');
  for (let i = 0; i < 250 && spawnSync('test', ['-e', ready]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** What the attacks must not have changed: the mount table, the hostname, core_pattern, the file outside, host root's key. */
function expectHostUnchanged(): void {
  expect(mountTable()).toBe(tableBefore);
  expect(hostname()).toBe(hostnameBefore);
  expect(readFileSync('/proc/sys/kernel/core_pattern', 'utf8')).toBe(corePattern);
  expect(readFileSync(secret, 'utf8')).toBe(`${secretText}\n`);
  expect(hostKey.read(rootKey.description)).toBe(rootKey.data);
}

/** What `attacker kexec`, `modules`, `acct`, `swap` and `reboot` print where the filter refuses them, whatever capabilities the action holds. */
const HOST_WIDE_REFUSED = [
  'blocked: kexec_load: EPERM',
  'blocked: kexec_file_load: EPERM',
  'blocked: init_module: EPERM',
  'blocked: finit_module: EPERM',
  'blocked: delete_module: EPERM',
  'blocked: acct: EPERM',
  'blocked: swapon: EPERM',
  'blocked: swapoff: EPERM',
  'blocked: reboot: EPERM',
];

/** The calls builds never need, each probed with arguments that harm nothing should it get through; and the action's seccomp mode. */
const SECCOMP_SCRIPT = [
  'grep ^Seccomp: /proc/self/status',
  ...['io-uring', 'personality', 'bpf', 'perf', 'userfaultfd', 'kexec', 'modules', 'acct', 'swap', 'reboot', 'name-handle', 'i386', 'x32'].map(
    (mode) => `attacker ${mode}`,
  ),
].join('; ');

/** SECCOMP_SCRIPT's output where mountat's filter refuses each call: EPERM, and ENOSYS for a foreign ABI. */
function expectSeccompRefusals(stdout: string): void {
  const lines = stdout.trim().split('\n');
  const x64 = process.arch === 'x64';
  expect(lines.slice(0, 16)).toEqual([
    // 2: a filter
    'Seccomp:\t2',
    'blocked: io_uring_setup: EPERM',
    'blocked: personality(READ_IMPLIES_EXEC): EPERM',
    'blocked: bpf(BPF_MAP_CREATE): EPERM',
    'blocked: bpf(BPF_PROG_LOAD): EPERM',
    'blocked: perf_event_open: EPERM',
    'blocked: userfaultfd: EPERM',
    ...HOST_WIDE_REFUSED,
  ]);
  expect(lines[16]).toBe('blocked: name_to_handle_at: EPERM');
  // A kernel without the i386 entry (as on the VMs this was written on) faults before any filter sees the call.
  expect(lines[17]).toMatch(
    x64 ? /^blocked: getpid through int \$0x80 \(i386\): (ENOSYS|no i386 entry in this kernel \(SIGSEGV\))$/ : /^blocked: no i386 ABI on this architecture$/,
  );
  expect(lines[18]).toBe(x64 ? 'blocked: getpid through the x32 ABI: ENOSYS' : 'blocked: no x32 ABI on this architecture');
  expect(lines).toHaveLength(19);
}

/** What `attacker buildwork` prints where all of it works. */
function expectBuildWork(stdout: string): void {
  const lines = stdout.trim().split('\n');
  expect(lines.slice(0, 4)).toEqual(['ok: pthread_create and pthread_join', 'ok: fork', 'ok: vfork and exec', 'ok: posix_spawn']);
  // Under mountat's filter clone3 is ENOSYS, and glibc (and any runtime that calls it) falls back to clone.
  expect(lines[4]).toMatch(/^ok: a child by (clone3|clone, clone3 being ENOSYS)$/);
  expect(lines.slice(5)).toEqual([
    'ok: epoll saw a pipe become readable',
    'ok: eventfd',
    'ok: memfd_create and mmap',
    'ok: inotify saw a write to a file in /tmp',
    'ok: personality(PER_LINUX32) and back',
  ]);
}

/** The attacks on keyrings, and their refusals: keyctl and add_key are refused to every action. */
const KEYRING_SCRIPT = `attacker keyring-read ${rootKey.description}; attacker keyring-add; attacker keyring-quota; attacker session-keyring`;
const KEYRINGS_REFUSED = [
  'blocked: join a session keyring of its own: EPERM',
  'blocked: add a key to @u: EPERM',
  'blocked: add_key: EPERM',
  'blocked: read the session keyring it inherited: EPERM',
].join('\n');

const USERNS_REFUSED = ['blocked: unshare(CLONE_NEWUSER): EPERM', 'blocked: clone(CLONE_NEWUSER): EPERM', 'blocked: clone3(CLONE_NEWUSER): ENOSYS'].join('\n');

/** What an action learns of the host: no cgroup path, no firmware, no key user. */
const HOST_VIEW_HIDDEN = [
  'blocked: /proc/self/cgroup shows only /',
  'blocked: nothing readable below /sys/firmware (0 entries)',
  'blocked: /proc/key-users lists no uid',
].join('\n');

/** Whom the runner runs actions as: its config for that, and what the action must be left with. */
interface Identity {
  config: object;
  /** CapEff, CapPrm and CapBnd of the action. */
  caps: string;
  uid: number;
  /** Make an action's directory its own, as the worker must for a runCommandsAs user to write there. */
  own(dir: string): void;
}
const asRoot: Identity = { config: {}, caps: DEFAULT_CAPS, uid: 0, own: () => {} };
const asUser: Identity = { config: { runCommandsAs: { userId: 4242, groupId: 4242 } }, caps: NO_CAPS, uid: 4242, own: (dir) => chownSync(dir, 4242, 4242) };

/**
 * The attacks, each asserted blocked, against a runner whose actions run as `as`; `more` adds that
 * identity's own tests on the same runner.
 */
function describeAttacks(title: string, as: Identity, more: (runner: () => RunnerProcess) => void = () => {}): void {
  describe(title, () => {
    let runner: RunnerProcess;
    const attack = (script: string) => runScript(runner, script, as);
    // The runner's own session keyring, with a key in it: no action may read or clear it.
    const runnerKey = { description: `mountat-runner-${as.uid}-${process.pid}`, data: `runner-secret-${as.uid}-${Date.now()}` };
    beforeAll(async () => {
      // fd 40 of the runner: the directory holding the secret, inherited without CLOEXEC.
      runner = await startRunner(as.config, undefined, [attackerBinary(), 'with-session-key', runnerKey.description, runnerKey.data, '--'], [inheritedDir]);
      expect(sessionKeyState(runnerKey.description)).toBe(`1 ${runnerKey.data.length}`);
    });
    afterAll(async () => {
      expect(await runner.stop()).toBe(0);
      expect(mountsUnder(runner.build)).toEqual([]);
      removeTree(runner.dir);
      expectHostUnchanged();
    });

    it('cannot climb out of its root: not by chroot, not from a user namespace of its own, not by file handle', async () => {
      const { stdout } = await attack(`attacker chroot-escape ${secret}; attacker userns-escape ${secret}; attacker handle`);
      const lines = stdout.trim().split('\n');
      expect(lines[0]).toBe('blocked: chroot: EPERM');
      // It gets no user namespace (one would hold every capability, chroot included; and even then,
      // after pivot_root there is nothing above its root to climb to).
      expect(lines[1]).toBe('blocked: unshare user+mount namespace: EPERM');
      expect(lines[2]).toBe('blocked: open_by_handle_at: EPERM');
    });

    it("reaches no key of host root's or the runner's, and uses up no key quota: keyctl and add_key are refused", async () => {
      const keysBefore = await keyUsage(as.uid);
      const { stdout } = await attack(KEYRING_SCRIPT);
      expect.soft(stdout).toBe(`${KEYRINGS_REFUSED}\n`);
      // Host root's key is still in its @u, the runner's session keyring still holds its key, and
      // the action's uid holds the keys and quota it held.
      expect.soft(hostKey.read(rootKey.description)).toBe(rootKey.data);
      expect.soft(sessionKeyState(runnerKey.description)).toBe(`1 ${runnerKey.data.length}`);
      expect(await keyUsage(as.uid, keysBefore)).toBe(keysBefore);
    });

    it('makes no user namespace: not by unshare, nor clone, nor clone3', async () => {
      const { stdout } = await attack('attacker userns');
      expect(stdout).toBe(`${USERNS_REFUSED}\n`);
    });

    it("runs under mountat's seccomp filter: what builds never need is refused, foreign ABIs too", async () => {
      const { stdout, exitCode } = await attack(SECCOMP_SCRIPT);
      expectSeccompRefusals(stdout);
      expect(exitCode).toBe('0');
    });

    it("cannot use up the host's inotify instances: the host's user of its uid still makes 16 while the action holds all it can", async () => {
      const id = attackAction(runner, as);
      const done = run(runner.client, requestFor(id, 'attacker inotify-hold /tmp/ready /tmp/release'));
      await untilReady(runner, id);
      let host: number;
      try {
        host = hostInotifyInstances(as.uid, 16);
      } finally {
        writeFileSync(join(runner.build, id, 'tmp', 'release'), '');
      }
      expect((await done).exitCode).toBe('0');
      const held = /^holding (\d+) inotify instances, then E[A-Z]+\n$/.exec(readFileSync(join(runner.build, id, 'stdout'), 'utf8'));
      expect(Number(held?.[1])).toBeGreaterThan(0);
      expect(host).toBe(16);
    });

    it('learns less about the host: no cgroup path in /proc/self/cgroup, no /sys/firmware, no /proc/key-users', async () => {
      const { stdout } = await attack('attacker cgroup; attacker firmware; attacker key-users');
      expect(stdout).toBe(`${HOST_VIEW_HIDDEN}\n`);
    });

    it('learns no more through the sysfs and masks made while the action before it ran: three in a row', async () => {
      // From the second on, each action's sysfs (with its covers) and proc's masks were made ahead.
      for (let i = 0; i < 3; i++) expect((await attack('attacker cgroup; attacker firmware; attacker key-users')).stdout).toBe(`${HOST_VIEW_HIDDEN}\n`);
    });

    it('still does ordinary build work under the filter: threads, fork, vfork, posix_spawn, clone3, epoll, eventfd, memfd, inotify', async () => {
      const { stdout, stderr, exitCode } = await attack('attacker buildwork');
      expect(stderr).toBe('');
      expectBuildWork(stdout);
      expect(exitCode).toBe('0');
    });

    it("cannot make a node of the host's disk, nor mount anything", async () => {
      const [major, minor] = rootDevice();
      const { stdout } = await attack(
        `attacker mknod-mount ${major} ${minor} ${secret}; mount -t tmpfs evil /tmp 2>&1; echo "mount: $?"; attacker remount-sys`,
      );
      expect(stdout).toBe('blocked: mknod: EPERM\nmount: permission denied (are you root?)\nmount: 1\nblocked: remount /sys: EPERM\n');
    });

    it('cannot write sysctls, nor read the masked parts of /proc', async () => {
      const script = [
        'echo 1 2>/tmp/err > /proc/sys/vm/drop_caches; echo "drop_caches: $?"',
        // Its own value back: should the write go through, the host is left as it was.
        'cat /proc/sys/kernel/core_pattern > /tmp/pattern; cat /tmp/pattern 2>/tmp/err > /proc/sys/kernel/core_pattern; echo "core_pattern: $?"',
        'grep " /proc/sys " /proc/self/mountinfo | cut -d" " -f6 | cut -d, -f1',
        'for f in kcore keys timer_list; do echo "$f: $(head -c 64 /proc/$f | wc -c)"; done',
        'cat /proc/sys/kernel/ostype',
      ].join('; ');
      const { stdout } = await attack(script);
      expect(stdout).toBe('drop_caches: 1\ncore_pattern: 1\nro\nkcore: 0\nkeys: 0\ntimer_list: 0\nLinux\n');
    });

    it("mounts and unmounts nothing of the runner's: `umount -l /proc` is refused and its proc stays", async () => {
      const id = attackAction(runner, as);
      const mark = sleepMark();
      const script = `umount -l /proc 2>/tmp/err; echo "umount: $?"; umount -l /sys 2>/tmp/err; echo "umount sys: $?"; touch /tmp/ready; exec sleep ${mark}`;
      const done = run(runner.client, requestFor(id, script));
      await untilReady(runner, id);
      // While the action runs, its own namespace still has every mount of its plan (the unmounts
      // were refused), and the runner's has none of them: they are on a copy of the root that
      // only the action's namespace holds.
      expect(actionPlanMounts(await processWith(`sleep ${mark}`))).toHaveLength(defaultPlanMountCount());
      expect(mountsUnder(runner.build)).toEqual([]);
      expect((await done).exitCode).toBe('0');
      expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe('umount: 1\numount sys: 1\n');
      expect(mountsUnder(runner.build)).toEqual([]);
    });

    it('cannot rename the host', async () => {
      const { stdout } = await attack('hostname evil 2>&1; echo "hostname: $?"');
      expect(stdout).toBe('hostname: sethostname: Operation not permitted\nhostname: 1\n');
      expect(hostname()).toBe(hostnameBefore);
    });

    it('has only fds 0, 1 and 2, although the runner inherited a directory fd outside', async () => {
      // The runner really has it, and it is not close-on-exec: its fd 40.
      expect(realpathSync(`/proc/${runner.process.pid}/fd/${INHERITED_FD}`)).toBe(realpathSync(outside));
      expect(Number.parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/${runner.process.pid}/fdinfo/${INHERITED_FD}`, 'utf8'))![1]!, 8) & 0o2000000).toBe(0);
      const { stdout } = await attack(`attacker fds; cat /proc/self/fd/${INHERITED_FD}/secret 2>&1 | head -1`);
      expect(stdout).toBe(`blocked: no fd but 0, 1, 2\ncat: can't open '/proc/self/fd/${INHERITED_FD}/secret': No such file or directory\n`);
      // Nor do the starter servers, which live as long as the runner, hold it: one per action
      // thread, each the child of the thread that started it.
      const pid = runner.process.pid!;
      const servers = readdirSync(`/proc/${pid}/task`).flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean));
      expect(servers.length).toBeGreaterThan(0);
      for (const server of servers) {
        const held = readdirSync(`/proc/${server}/fd`).map((fd) => readlinkSync(`/proc/${server}/fd/${fd}`));
        expect(held).not.toContain(realpathSync(outside));
      }
    });

    it('cannot forge its end: the runner answers the exit status the kernel gave', async () => {
      const { exitCode, stdout } = await attack('attacker forge; echo "X 0 0 0 0 0 0 0 0 0 0 0 0 0 0" 2>/tmp/err > /proc/1/fd/5; echo "shell: $?"; exit 3');
      expect(stdout).toBe("blocked: open /proc/1/fd/5: EACCES\nblocked: pidfd_getfd of pid 1's fd 5: EPERM\nblocked: ptrace pid 1: EPERM\nshell: 1\n");
      expect(exitCode).toBe('3');
    });

    it('has exactly the documented capabilities, none ambient or inheritable, and NO_NEW_PRIVS', async () => {
      const { stdout } = await attack('cat /proc/self/status');
      // Real, effective, saved and filesystem ids: all the identity's, none left at 0 to go back to.
      expect([ids(stdout, 'Uid'), ids(stdout, 'Gid')]).toEqual([Array(4).fill(String(as.uid)), Array(4).fill(String(as.uid))]);
      expect([statusField(stdout, 'CapEff'), statusField(stdout, 'CapPrm'), statusField(stdout, 'CapBnd')]).toEqual([as.caps, as.caps, as.caps]);
      expect([statusField(stdout, 'CapInh'), statusField(stdout, 'CapAmb'), statusField(stdout, 'NoNewPrivs')]).toEqual([NO_CAPS, NO_CAPS, '1']);
    });

    it('sees its own root as / and only its own processes; its init is out of reach', async () => {
      const { stdout } = await attack('ls /; readlink /proc/self/root; cd /proc/1/root 2>&1; cat /proc/1/environ 2>&1; ls /proc | grep -c "^[0-9]"');
      const lines = stdout.trim().split('\n');
      expect(lines.slice(0, 6)).toEqual(['bin', 'proc', 'sys', 'tmp', 'usr', '/']);
      expect(lines[6]).toMatch(/can't cd to \/proc\/1\/root: Permission denied$/);
      expect(lines[7]).toMatch(/^cat: can't open '\/proc\/1\/environ': Permission denied$/);
      // init, sh, and the pipeline's ls and grep
      expect(Number(lines[8])).toBeLessThanOrEqual(4);
    });

    more(() => runner);
  });
}

describeAttacks('an action running as root, default config, through the runner', asRoot);

describeAttacks('an action with runCommandsAs (uid and gid 4242), through the runner', asUser, (runner) => {
  it('gains nothing from a setuid-root binary in its input root', async () => {
    const id = attackAction(runner(), asUser);
    const suid = installAttacker(join(runner().build, id, 'root'), 'suid-attacker', 0o755);
    chownSync(suid, 0, 0);
    chmodSync(suid, 0o4755);
    expect(statSync(suid).mode & 0o4000).toBe(0o4000);
    await run(
      runner().client,
      requestFor(id, `suid-attacker euid; suid-attacker chroot-escape ${secret}; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status`),
    );
    expect(readFileSync(join(runner().build, id, 'stdout'), 'utf8')).toBe(
      `blocked: effective uid 4242\nblocked: chroot: EPERM\nCapEff:\t${NO_CAPS}\nCapBnd:\t${NO_CAPS}\nNoNewPrivs:\t1\n`,
    );
  });

  it('still does ordinary build work: /tmp, /proc/self/exe, writing and chmod in its working directory', async () => {
    const id = attackAction(runner(), asUser);
    const work = join(runner().build, id, 'root', 'work');
    mkdirSync(work);
    asUser.own(work);
    const script = [
      'id -u; id -g',
      'readlink /proc/self/exe',
      'echo data > /tmp/f && cat /tmp/f',
      'echo out > out && chmod 0640 out && stat -c "%u %g %a" out',
      'cp -p out copy && stat -c "%u %g %a" copy',
      'mkdir -p d/e && touch d/e/x && chmod -R go-rwx d && rm -r d && echo removed',
      // Its own files only: chown needs CAP_CHOWN, which it has not.
      'chown 0 out 2>&1; echo "chown: $?"',
    ].join(' && ');
    const response = await run(runner().client, requestFor(id, script, { workingDirectory: 'work' }));
    expect(readFileSync(join(runner().build, id, 'stderr'), 'utf8')).toBe('');
    expect(readFileSync(join(runner().build, id, 'stdout'), 'utf8')).toBe(
      '4242\n4242\n/bin/busybox\ndata\n4242 4242 640\n4242 4242 640\nremoved\nchown: out: Operation not permitted\nchown: 1\n',
    );
    expect(response.exitCode).toBe('0');
    expect(statSync(join(work, 'out')).uid).toBe(4242);
  });
});

describe('an operator who grants CAP_SYS_ADMIN and CAP_SYS_CHROOT: the namespaces still hold', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({ capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT', 'CAP_SETUID', 'CAP_SETGID'] });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('warns at start-up about each capability that acts outside the namespaces', () => {
    expect(runner.output()).toMatch(
      /"capability":"CAP_SYS_ADMIN","lets":"mount, unmount, namespaces, and much of the kernel","msg":"actions are granted a capability that acts outside their namespaces"/,
    );
    expect(runner.output()).toMatch(/"capability":"CAP_SYS_CHROOT"/);
  });

  it("keeps the action's mounts, unmounts and hostname in its own namespaces, and chroot still finds no way out", async () => {
    const id = attackAction(runner);
    const mark = sleepMark();
    const script = [
      `attacker chroot-escape ${secret}`,
      'mkdir -p /tmp/inner && mount -t tmpfs inner /tmp/inner && echo mounted',
      'umount -l /sys && echo unmounted-sys',
      'hostname evil-inside && hostname',
      `touch /tmp/ready; exec sleep ${mark}`,
    ].join('; ');
    const done = run(runner.client, requestFor(id, script));
    await untilReady(runner, id);
    // Its tmpfs and its unmount are its own namespace's: there /sys is gone and /tmp/inner is
    // there; the runner's namespace has neither, nor any mount of the action's, nor ever had.
    const own = actionPlanMounts(await processWith(`sleep ${mark}`));
    expect(own).toContain('/tmp/inner');
    expect(own).toContain('/proc');
    expect(own.filter((point) => point === '/sys' || point.startsWith('/sys/'))).toEqual([]);
    expect(mountsUnder(runner.build)).toEqual([]);
    expect(hostname()).toBe(hostnameBefore);
    expect((await done).exitCode).toBe('0');
    expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe(
      'blocked: the file outside is not reachable: ENOENT\nmounted\nunmounted-sys\nevil-inside\n',
    );
    expect(mountsUnder(runner.build)).toEqual([]);
  });
});

describe('an operator who grants the capabilities those calls check: the filter refuses them still', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    // Without the filter, each of these calls would get past its permission check (and fail only on
    // the attacker's harmless arguments), or succeed: open_by_handle_at would open the host's filesystem.
    runner = await startRunner({
      capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_MODULE', 'CAP_SYS_PACCT', 'CAP_BPF', 'CAP_PERFMON', 'CAP_DAC_READ_SEARCH'],
    });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    expect(mountsUnder(runner.build)).toEqual([]);
    removeTree(runner.dir);
  });

  it('refuses open_by_handle_at, user namespaces, bpf, perf, kexec, modules, acct, swap and reboot', async () => {
    const { stdout } = await runScript(
      runner,
      'grep ^CapEff /proc/self/status; attacker handle; attacker userns; attacker bpf; attacker perf; attacker kexec; attacker modules; attacker acct; attacker swap; attacker reboot',
    );
    expect(stdout).toBe(
      [
        // CAP_DAC_READ_SEARCH, CAP_SYS_MODULE, CAP_SYS_PACCT, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_PERFMON, CAP_BPF
        'CapEff:\t000000c000710004',
        'blocked: open_by_handle_at: EPERM',
        USERNS_REFUSED,
        'blocked: bpf(BPF_MAP_CREATE): EPERM',
        'blocked: bpf(BPF_PROG_LOAD): EPERM',
        'blocked: perf_event_open: EPERM',
        ...HOST_WIDE_REFUSED,
      ].join('\n') + '\n',
    );
  });
});

describe("where a seccomp profile refuses pivot_root, as Docker's default does", () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({}, undefined, [fixtureBinary('seccomp-errno'), 'pivot_root', 'EPERM', '--'], [inheritedDir]);
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    expect(mountsUnder(runner.build)).toEqual([]);
    removeTree(runner.dir);
  });

  it('roots each action by chroot instead, and says so at start-up', () => {
    expect(runner.output()).toMatch(/"root":"chroot","msg":"pivot_root is refused here \(a seccomp profile\?\)/);
    expect(runner.output()).toMatch(/"root":"chroot","recovered"/);
  });

  it('still keeps the action in: no chroot of its own, no user namespace (the kernel refuses one to a chrooted process), no handle, no fd', async () => {
    const { stdout } = await runScript(
      runner,
      `attacker chroot-escape ${secret}; attacker userns-escape ${secret}; attacker handle; attacker fds; cd /proc/1/root 2>&1; grep -E "^(CapEff|NoNewPrivs)" /proc/self/status; ls /`,
    );
    expect(stdout).toBe(
      [
        'blocked: chroot: EPERM',
        'blocked: unshare user+mount namespace: EPERM',
        'blocked: open_by_handle_at: EPERM',
        'blocked: no fd but 0, 1, 2',
        "sh: cd: line 0: can't cd to /proc/1/root: Permission denied",
        `CapEff:\t${DEFAULT_CAPS}`,
        'NoNewPrivs:\t1',
        'bin',
        'proc',
        'sys',
        'tmp',
        'usr',
      ].join('\n') + '\n',
    );
  });

  it('refuses to start when actions would hold a capability that opens a chroot', () => {
    const dir = scratchDir('mountat-runner-');
    try {
      const file = join(dir, 'config.json');
      mkdirSync(join(dir, 'build'));
      writeFileSync(
        file,
        JSON.stringify({
          buildDirectoryPath: join(dir, 'build'),
          grpcServers: [{ listenPaths: [join(dir, 's')] }],
          stateDirectory: join(dir, 'state'),
          capabilities: ['CAP_CHOWN', 'CAP_SYS_CHROOT'],
        }),
      );
      const result = spawnSync(fixtureBinary('seccomp-errno'), ['pivot_root', 'EPERM', '--', ...mountatArgv('runner', '--config', file)], { encoding: 'utf8' });
      expect(result.stderr).toBe(
        'mountat: pivot_root is refused here (a seccomp profile?), and a chroot is no barrier to actions holding CAP_SYS_CHROOT: allow pivot_root, or do not grant it\n',
      );
      expect(result.status).toBe(1);
    } finally {
      removeTree(dir);
    }
  });
});

describe('capabilities the runner itself lacks', () => {
  it("are not the action's either: a warning names them at start-up, and the action runs without them", async () => {
    const runner = await startRunner({}, undefined, ['setpriv', '--bounding-set=-chown', '--']);
    try {
      expect(runner.output()).toMatch(
        /"capabilities":\["CAP_CHOWN"\],"msg":"capabilities configured for actions that the runner itself lacks: actions run without them"/,
      );
      const { stdout } = await runScript(runner, 'grep ^CapEff /proc/self/status; touch f; chown 1000 f 2>&1; echo "chown: $?"; chmod 600 f && echo chmod-ok');
      expect(stdout).toBe('CapEff:\t00000000000001fa\nchown: f: Operation not permitted\nchown: 1\nchmod-ok\n');
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });
});

describe('mountat exec', () => {
  it('contains the command as the runner does', () => {
    const root = busyboxRoot();
    const state = scratchDir('mountat-state-');
    try {
      installAttacker(root);
      const script = [
        `attacker chroot-escape ${secret}`,
        `attacker userns-escape ${secret}`,
        'attacker fds',
        'hostname evil 2>/tmp/err; echo "hostname: $?"',
        'mount -t tmpfs evil /tmp 2>/tmp/err; echo "mount: $?"',
        'echo 1 2>/tmp/err > /proc/sys/vm/drop_caches; echo "drop_caches: $?"',
        'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status',
        'ls /proc | grep -c "^[0-9]"',
      ].join('; ');
      // mountat exec inherits a directory fd outside (at fd 40, out of reach of Node's own close-on-exec
      // marking): the command must not.
      const result = spawnSync(
        process.execPath,
        [join(repo, 'bin', 'mountat.js'), 'exec', '--root', root, '--state-dir', state, '--', '/bin/sh', '-c', script],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe', ...Array<'ignore'>(INHERITED_FD - 3).fill('ignore'), inheritedDir],
        },
      );
      expect(result.stderr).toBe('');
      const lines = result.stdout.trim().split('\n');
      expect(lines.slice(0, 9)).toEqual([
        'blocked: chroot: EPERM',
        'blocked: unshare user+mount namespace: EPERM',
        'blocked: no fd but 0, 1, 2',
        'hostname: 1',
        'mount: 1',
        'drop_caches: 1',
        `CapEff:\t${DEFAULT_CAPS}`,
        `CapBnd:\t${DEFAULT_CAPS}`,
        'NoNewPrivs:\t1',
      ]);
      expect(Number(lines[9])).toBeLessThanOrEqual(4);
      expect(result.status).toBe(0);
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      removeTree(root);
      removeTree(state);
    }
  });

  it("keeps the caller's keyrings, user namespaces and the filtered calls from the command, as the runner does", async () => {
    const root = busyboxRoot();
    const state = scratchDir('mountat-state-');
    const callerKey = { description: `mountat-exec-caller-${process.pid}`, data: `exec-caller-secret-${Date.now()}` };
    try {
      installAttacker(root);
      const keysBefore = await keyUsage(0);
      const script = [KEYRING_SCRIPT, 'attacker userns', SECCOMP_SCRIPT, 'attacker cgroup; attacker firmware; attacker key-users'].join('; ');
      // Started under a session keyring of the caller's own, holding a key: the command must not read it.
      const result = spawnSync(
        attackerBinary(),
        [
          'with-session-key',
          callerKey.description,
          callerKey.data,
          '--',
          ...mountatArgv('exec', '--root', root, '--state-dir', state),
          '--',
          '/bin/sh',
          '-c',
          script,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(result.stderr).toBe('');
      const lines = result.stdout.split('\n');
      expect.soft(lines.slice(0, 4).join('\n')).toBe(KEYRINGS_REFUSED);
      expect.soft(hostKey.read(rootKey.description)).toBe(rootKey.data);
      expect.soft(await keyUsage(0, keysBefore)).toBe(keysBefore);
      expect(lines.slice(4, 7).join('\n')).toBe(USERNS_REFUSED);
      expectSeccompRefusals(lines.slice(7, 26).join('\n'));
      expect(lines.slice(26).join('\n')).toBe(`${HOST_VIEW_HIDDEN}\n`);
      expect(result.status).toBe(0);
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      removeTree(root);
      removeTree(state);
    }
  });

  it('still does ordinary build work under the filter', () => {
    const root = busyboxRoot();
    const state = scratchDir('mountat-state-');
    try {
      installAttacker(root);
      const result = mountat(['exec', '--root', root, '--state-dir', state, '--', '/bin/attacker', 'buildwork']);
      expect(result.stderr).toBe('');
      expectBuildWork(result.stdout);
      expect(result.status).toBe(0);
    } finally {
      removeTree(root);
      removeTree(state);
    }
  });

  it("cannot use up host root's inotify instances: host root still makes 16 while the command holds all it can", async () => {
    const root = busyboxRoot();
    const state = scratchDir('mountat-state-');
    try {
      installAttacker(root);
      const child = spawn(
        process.execPath,
        [join(repo, 'bin', 'mountat.js'), 'exec', '--root', root, '--state-dir', state, '--', '/bin/attacker', 'inotify-hold', '/ready', '/release'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      for (let i = 0; i < 250 && spawnSync('test', ['-e', join(root, 'ready')]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      let host: number;
      try {
        host = hostInotifyInstances(0, 16);
      } finally {
        writeFileSync(join(root, 'release'), '');
      }
      expect(await exited).toBe(0);
      const held = /^holding (\d+) inotify instances, then E[A-Z]+\n$/.exec(stdout);
      expect(Number(held?.[1])).toBeGreaterThan(0);
      expect(host).toBe(16);
      expect(mountsUnder(root)).toEqual([]);
    } finally {
      removeTree(root);
      removeTree(state);
    }
  });

  it('takes --capabilities and --network none', () => {
    const root = busyboxRoot();
    const state = `${root}-state`;
    try {
      // /proc/net shows the reader's network namespace (sysfs would show the runner's, where it was made).
      const script = 'grep ^CapEff /proc/self/status; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; ip -o link | cut -d" " -f2,3';
      const result = mountat([
        'exec',
        '--root',
        root,
        '--state-dir',
        state,
        '--capabilities',
        'chown,CAP_FOWNER',
        '--network',
        'none',
        '--',
        '/bin/sh',
        '-c',
        script,
      ]);
      expect(result.stderr).toBe('');
      // Only loopback in its network namespace, and up.
      expect(result.stdout).toBe('CapEff:\t0000000000000009\nlo\nlo: <LOOPBACK,UP,LOWER_UP>\n');
      expect(mountat(['exec', '--root', root, '--network', 'bogus', '--', '/bin/true']).stderr).toMatch(/^mountat: --network "bogus": one of host, none\n/);
      expect(mountat(['exec', '--root', root, '--capabilities', 'CAP_FLY', '--', '/bin/true']).stderr).toMatch(
        /^mountat: --capabilities: unknown capability "CAP_FLY"\n/,
      );
      expect(readdirSync(state)).toEqual([]);
    } finally {
      removeTree(root);
      removeTree(state);
    }
  });
});

/** Run `script` in src/ (holding hello.c) of a full-userland root, on a runner of its own whose actions run as `as`. */
function runInFullUserlandAs(as: Identity, script: string): Promise<{ exitCode: string; stdout: string; stderr: string }> {
  return runInFullUserland({
    config: as.config,
    own: (dir) => as.own(dir),
    arguments: ['/bin/sh', '-c', script],
    files: { 'hello.c': '#include <stdio.h>\nint main(void) { puts("hello from gcc"); return 0; }\n' },
  });
}

describe('ordinary build work still works', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner();
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('as root: /tmp, /proc/self/exe, chown and chmod in the working directory, switching user', async () => {
    const id = attackAction(runner);
    mkdirSync(join(runner.build, id, 'root', 'work'));
    const script = [
      'readlink /proc/self/exe',
      'echo data > /tmp/f && cat /tmp/f',
      'echo out > out && chown 1234:5678 out && chmod 0640 out && stat -c "%u %g %a" out',
      'cp -p out copy && stat -c "%u %g %a" copy',
      'mkdir -p d/e && chown -R 99 d && touch d/e/x && rm -r d && echo removed',
      'attacker setuid 1000',
      'kill -0 1 && echo "init alive"',
    ].join(' && ');
    const response = await run(runner.client, requestFor(id, script, { workingDirectory: 'work' }));
    expect(readFileSync(join(runner.build, id, 'stderr'), 'utf8')).toBe('');
    expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe('/bin/busybox\ndata\n1234 5678 640\n1234 5678 640\nremoved\nuid 1000\ninit alive\n');
    expect(response.exitCode).toBe('0');
    expect(statSync(join(runner.build, id, 'root', 'work', 'out')).uid).toBe(1234);
  });

  it('compiles and runs a C program with gcc, and runs java, in a full-userland root', async () => {
    const java = realpathSync('/usr/bin/java');
    const { stdout, stderr, exitCode } = await runInFullUserlandAs(asRoot, `gcc -O2 -o hello hello.c && ./hello && ${java} -version 2>&1 | head -1`);
    expect(stderr).toBe('');
    const out = stdout.split('\n');
    expect(out[0]).toBe('hello from gcc');
    expect(out[1]).toMatch(/^openjdk version "/);
    expect(exitCode).toBe('0');
  });

  it('compiles and runs a C program with gcc as runCommandsAs, in a full-userland root', async () => {
    const { stdout, stderr, exitCode } = await runInFullUserlandAs(asUser, 'gcc -O2 -o hello hello.c && ./hello && stat -c "%u %a" hello');
    expect(stderr).toBe('');
    expect(stdout).toBe('hello from gcc\n4242 755\n');
    expect(exitCode).toBe('0');
  });

  it('32 actions at once, each in its own root and namespaces', async () => {
    const ids = Array.from({ length: 32 }, () => attackAction(runner));
    const responses = await Promise.all(
      ids.map((id) =>
        run(runner.client, requestFor(id, `echo ${id} > /tmp/mark; hostname; ls /proc | grep -c "^[0-9]"; cat /tmp/mark; readlink /proc/self/exe`)),
      ),
    );
    for (const [i, id] of ids.entries()) {
      expect(responses[i]!.exitCode).toBe('0');
      const out = readFileSync(join(runner.build, id, 'stdout'), 'utf8').split('\n');
      expect(out[0]).toBe(hostnameBefore);
      expect(Number(out[1])).toBeLessThanOrEqual(4);
      expect(out.slice(2, 4)).toEqual([id, '/bin/busybox']);
    }
    expect(mountsUnder(runner.build)).toEqual([]);
  });
});
