// mountat's own seccomp filter, the session keyring and the cgroup namespace every action gets:
// through a real runner over its socket and through `mountat exec`, as the action sees them
// (test/fixtures/syscall-probe.c makes the calls) and as the kernel holds the filter (the probe
// reads the action's filter back with ptrace and runs it on each call of the table in
// src/sandbox/seccomp-policy.ts, foreign ABIs included, which this kernel may not be able to run).
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSED_SYSCALLS } from '../src/sandbox/index.js';
import { fixtureBinary } from './helpers/attacker.js';
import { mountat, mountatArgv } from './helpers/cli.js';
import { busyboxRoot, removeTree, repo, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, run, startRunner, type RunnerProcess } from './helpers/runner.js';

const built = scratchDir('mountat-syscall-probe-');
const probe = join(built, 'syscall-probe');
/** The key the runner's (and exec's) session keyring holds: no action may find it. */
const KEY = `mountat-test-key-${process.pid}`;

beforeAll(() => {
  execFileSync('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', probe, join(repo, 'test', 'fixtures', 'syscall-probe.c'), '-lseccomp']);
});
afterAll(() => removeTree(built));

let counter = 0;
/** An action's directory, with the probe in its root; its tmp owned by `uid`. */
function probeAction(runner: RunnerProcess, uid = 0): string {
  const id = `s${++counter}`;
  makeAction(runner.build, id);
  copyFileSync(probe, join(runner.build, id, 'root', 'bin', 'syscall-probe'));
  chownSync(join(runner.build, id, 'tmp'), uid, uid);
  return id;
}

async function runScript(runner: RunnerProcess, script: string, uid = 0): Promise<{ stdout: string; stderr: string; exitCode: string }> {
  const id = probeAction(runner, uid);
  const response = await run(runner.client, requestFor(id, script));
  return {
    exitCode: response.exitCode,
    stdout: readFileSync(join(runner.build, id, 'stdout'), 'utf8'),
    stderr: readFileSync(join(runner.build, id, 'stderr'), 'utf8'),
  };
}

/** The runner's (or exec's) session keyring, as `syscall-probe session` printed it. */
function sessionSerial(output: string): string {
  const serial = /^session (\d+)$/m.exec(output)?.[1];
  if (serial === undefined) throw new Error(`no session keyring in: ${output}`);
  return serial;
}

/** What `syscall-probe keyring KEY` printed: the serial and owner of the session keyring, and whether KEY was found. */
function keyringOf(stdout: string): { serial: string; uid: string; name: string; search: string } {
  const match = /^session (\d+) keyring;(\d+);\d+;[0-9a-f]+;(.*)\nsearch: (\w+)\n$/.exec(stdout);
  if (!match) throw new Error(`unexpected keyring output: ${stdout}`);
  return { serial: match[1]!, uid: match[2]!, name: match[3]!, search: match[4]! };
}

describe('every action, through a runner with the default config', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    // The runner in a session keyring of its own, which holds a key.
    runner = await startRunner({}, undefined, [probe, 'session', KEY, '--']);
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('runs under a seccomp filter, after NO_NEW_PRIVS', async () => {
    const { stdout } = await runScript(runner, 'grep -E "^(NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status');
    // One filter: mountat's own, last, which also hands inotify to the broker (native/starter/filter.c).
    expect(stdout).toBe('NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n');
  });

  it('cannot make a user namespace, by unshare or clone', async () => {
    const { stdout } = await runScript(runner, 'syscall-probe userns; unshare -U true 2>&1; echo "unshare -U: $?"');
    expect(stdout).toBe('clone: EPERM\nunshare: EPERM\nunshare: unshare(0x10000000): Operation not permitted\nunshare -U: 1\n');
  });

  it('gets ENOSYS from clone3, and still makes threads, posix_spawn, vfork and fork (glibc falls back to clone)', async () => {
    const { stdout } = await runScript(runner, 'syscall-probe clone3; syscall-probe processes');
    expect(stdout).toBe('clone3: ENOSYS\npthread_create: ok\nposix_spawn: ok\nvfork: ok\nfork: ok\n');
  });

  it('is refused io_uring, READ_IMPLIES_EXEC and keyctl; keeps the harmless personas', async () => {
    const { stdout } = await runScript(
      runner,
      `syscall-probe io_uring_setup; syscall-probe personality 400000; syscall-probe personality 8; syscall-probe personality ffffffff; syscall-probe keyring ${KEY}`,
    );
    expect(stdout).toBe('io_uring_setup: EPERM\npersonality: EPERM\npersonality: ok\npersonality: ok\nkeyctl: EPERM\n');
  });

  it('gets ENOSYS from an x32 call', async (ctx) => {
    ctx.skip(process.arch !== 'x64', 'x32 is an ABI of x86_64');
    // This kernel has no x32 ABI (CONFIG_X86_X32_ABI): it answers ENOSYS unfiltered too. The
    // filter's own answer is checked below, by running its program.
    expect((await runScript(runner, 'syscall-probe x32')).stdout).toBe('x32: ENOSYS\n');
  });

  it('gets ENOSYS from an i386 call (int $0x80), or the fault this machine gives one unfiltered', async (ctx) => {
    ctx.skip(process.arch !== 'x64', 'i386 is an ABI of x86_64');
    // A hypervisor may refuse int $0x80 before any filter sees it (SIGSEGV): this machine's does.
    // Then the action meets the same fault, and the filter's own answer is checked below by
    // running its program; where the call runs, the action must get ENOSYS.
    const here = spawnSync(probe, ['i386'], { encoding: 'utf8' });
    const inside = await runScript(runner, 'syscall-probe i386; echo "status $?"');
    if (here.stdout === 'i386: ok\n') {
      expect(inside.stdout).toBe('i386: ENOSYS\nstatus 0\n');
    } else {
      expect(here.signal).toBe('SIGSEGV');
      expect(inside.stdout).toBe('status 139\n');
    }
  });

  it('sees "/" as its cgroup in every hierarchy (a cgroup namespace of its own)', async () => {
    const { stdout } = await runScript(runner, 'cat /proc/self/cgroup');
    const own = readFileSync('/proc/self/cgroup', 'utf8');
    // Not vacuous where the runner's own cgroup is "/" in every hierarchy: the lines are all there.
    expect(stdout.trim().split('\n').length).toBe(own.trim().split('\n').length);
    for (const line of stdout.trim().split('\n')) expect(line).toMatch(/^\d+:[^:]*:\/$/);
  });

  it("holds a filter whose program answers each of the table's calls as the table says, and refuses foreign ABIs", async () => {
    const id = probeAction(runner);
    const marker = '2.71828';
    const done = run(runner.client, requestFor(id, `exec sleep ${marker}`));
    const pid = await untilFiltered(marker);
    const expected = expectedAnswers();
    const out = execFileSync(probe, ['filter', String(pid), ...expected.keys()], { encoding: 'utf8' });
    expect((await done).exitCode).toBe('0');
    const absent = ABSENT[process.arch] ?? [];
    for (const line of out.trim().split('\n')) {
      const [call, answer] = line.split(': ');
      const want = absent.includes(call!) ? 'absent' : expected.get(call!);
      expect(`${call}: ${answer}`).toBe(`${call}: ${want}`);
    }
    expect(out.trim().split('\n').length).toBe(expected.size);
  });
});

/** Calls the table names that this architecture lacks (libseccomp and the kernel alike): the filter cannot meet them. */
const ABSENT: Record<string, string[]> = {
  x64: ['vm86', 'vm86old', 'stime', 'umount'],
  arm64: ['create_module', 'query_module', 'get_kernel_syms', 'uselib', 'ustat', 'sysfs', '_sysctl', 'vm86', 'vm86old', 'iopl', 'ioperm', 'stime', 'umount'],
};

/** Cases for the calls refused for some arguments only (hex arguments), each with its answer. */
const BY_ARGUMENTS: Record<string, Record<string, string>> = {
  personality: {
    'personality:0': 'allow',
    'personality:8': 'allow',
    'personality:20000': 'allow',
    'personality:20008': 'allow',
    'personality:ffffffff': 'allow',
    'personality:400000': 'EPERM',
    'personality:40000': 'EPERM',
    // The kernel reads an unsigned int: these are READ_IMPLIES_EXEC and 0 to it.
    'personality:100400000': 'EPERM',
    'personality:100000000': 'allow',
  },
  socket: { 'socket:1': 'allow', 'socket:2': 'allow', 'socket:28': 'EPERM', 'socket:26': 'EPERM', 'socket:100000028': 'EPERM' },
  unshare: { 'unshare:10000000': 'EPERM', 'unshare:10020000': 'EPERM', 'unshare:20000': 'allow' },
  clone: { 'clone:11': 'allow', 'clone:10000011': 'EPERM', 'clone:ffffffff10000000': 'EPERM' },
  clone3: { clone3: 'ENOSYS' },
  setns: { 'setns:3:10000000': 'EPERM', 'setns:3:0': 'EPERM', 'setns:3:100000000': 'EPERM', 'setns:3:20000': 'allow', 'setns:3:40000000': 'allow' },
};

/** Every call the probe should ask the filter about, and its answer under the default options. */
function expectedAnswers(): Map<string, string> {
  const expected = new Map<string, string>();
  for (const { name, errno, rule } of REFUSED_SYSCALLS) {
    if (rule === 'by-name' || rule === 'unless-admin') expected.set(name, errno);
    else {
      const cases = BY_ARGUMENTS[name];
      // A new rule of its own needs cases here.
      expect(cases, `cases for ${name}`).toBeDefined();
      for (const [call, answer] of Object.entries(cases!)) expected.set(call, answer);
    }
  }
  // What a build needs, and what the table leaves allowed on purpose.
  for (const name of ['read', 'openat', 'execve', 'ptrace', 'clock_adjtime', 'seccomp', 'prctl', 'epoll_create1']) expected.set(name, 'allow');
  // The inotify broker's calls (the action has a PID namespace): the native ABI's only, whatever the flags.
  for (const name of process.arch === 'x64' ? ['inotify_init', 'inotify_init1', 'inotify_init1:80800'] : ['inotify_init1', 'inotify_init1:80800'])
    expected.set(name, 'notify');
  const foreign =
    process.arch === 'x64'
      ? ['i386/getpid', 'i386/read', 'i386/inotify_init1', 'x32/getpid', 'x32/read', 'x32/inotify_init1']
      : ['arm/getpid', 'arm/read', 'arm/inotify_init1'];
  for (const call of foreign) expected.set(call, 'ENOSYS');
  return expected;
}

/** The pid (here) of the process running `sleep MARKER` under a seccomp filter: the action. */
async function untilFiltered(marker: string): Promise<number> {
  for (let i = 0; i < 250; i++) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') !== `sleep\0${marker}\0`) continue;
        if (/^Seccomp:\s+2$/m.test(readFileSync(`/proc/${entry}/status`, 'utf8'))) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no filtered process runs sleep ${marker}`);
}

describe('the session keyring', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    // keyctl allowed back, so that the action can look; as runCommandsAs, whose key quota the key is charged to.
    runner = await startRunner({ allowSyscalls: ['keyctl'], runCommandsAs: { userId: 4242, groupId: 4242 } }, undefined, [probe, 'session', KEY, '--']);
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it("of an action is its own, not the runner's, owned by the action's user: the runner's key is not found", async () => {
    // The check can fail: from the runner's session keyring the key is found.
    expect(spawnSync(probe, ['session', KEY, '--', probe, 'keyring', KEY], { encoding: 'utf8' }).stdout).toMatch(/\nsearch: ok\n$/);
    const first = keyringOf((await runScript(runner, `syscall-probe keyring ${KEY}`, 4242)).stdout);
    const second = keyringOf((await runScript(runner, `syscall-probe keyring ${KEY}`, 4242)).stdout);
    expect(first).toMatchObject({ uid: '4242', name: '_ses', search: 'ENOKEY' });
    expect(second).toMatchObject({ uid: '4242', name: '_ses', search: 'ENOKEY' });
    // Neither the runner's nor the other action's.
    expect(new Set([sessionSerial(runner.output()), first.serial, second.serial]).size).toBe(3);
  });
});

describe('options to allow back', () => {
  it('allowUserNamespaces: an action makes user namespaces, and mounts in one of its own', async () => {
    // As runCommandsAs: root inside may map only its own uid (mapping the host's uid 0 needs CAP_SETFCAP).
    const runner = await startRunner({ allowUserNamespaces: true, runCommandsAs: { userId: 4242, groupId: 4242 } });
    try {
      expect(runner.output()).toMatch(/"userNamespaces":true,"msg":"actions may make user namespaces: every capability inside one/);
      const { stdout } = await runScript(
        runner,
        'syscall-probe userns; syscall-probe clone3; unshare -U true; echo "unshare -U: $?"; unshare -r -m sh -c "mount -t tmpfs inner /tmp && echo mounted"',
        4242,
      );
      expect(stdout).toBe('clone: ok\nunshare: ok\nclone3: ok\nunshare -U: 0\nmounted\n');
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });

  it('allowSyscalls: exactly the calls named are allowed back', async () => {
    const runner = await startRunner({ allowSyscalls: ['io_uring_setup', 'personality'] });
    try {
      expect(runner.output()).toMatch(
        /"syscalls":\["io_uring_setup","personality"\],"msg":"system calls mountat's seccomp filter refuses are allowed back for actions"/,
      );
      const { stdout } = await runScript(runner, 'syscall-probe io_uring_setup; syscall-probe personality 400000; syscall-probe userns; syscall-probe keyring');
      expect(stdout).toBe('io_uring_setup: ok\npersonality: ok\nclone: EPERM\nunshare: EPERM\nkeyctl: EPERM\n');
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });

  it('an action granted CAP_SYS_ADMIN mounts in its namespaces, and is still refused user namespaces and io_uring', async () => {
    const runner = await startRunner({ capabilities: ['CAP_SYS_ADMIN'] });
    try {
      const { stdout } = await runScript(
        runner,
        'mkdir /tmp/inner && mount -t tmpfs inner /tmp/inner && echo mounted; syscall-probe userns; syscall-probe io_uring_setup',
      );
      expect(stdout).toBe('mounted\nclone: EPERM\nunshare: EPERM\nio_uring_setup: EPERM\n');
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });

  it('a name the filter does not refuse, or one that keeps user namespaces closed, stops the runner at start-up', () => {
    const dir = scratchDir('mountat-runner-');
    try {
      mkdirSync(join(dir, 'build'));
      const config = (allowSyscalls: string[]) => {
        const file = join(dir, 'config.json');
        writeFileSync(file, JSON.stringify({ buildDirectoryPath: join(dir, 'build'), grpcServers: [{ listenPaths: [join(dir, 's')] }], allowSyscalls }));
        return spawnSync(process.execPath, [join(repo, 'bin', 'mountat.js'), 'runner', '--config', file], { encoding: 'utf8', timeout: 20_000 });
      };
      const read = config(['io_uring_setup', 'read']);
      expect(read.stderr).toBe(`mountat: config file ${join(dir, 'config.json')}: config.allowSyscalls: "read": mountat's seccomp filter does not refuse it\n`);
      expect(read.status).not.toBe(0);
      expect(config(['clone3']).stderr).toBe(
        `mountat: config file ${join(dir, 'config.json')}: config.allowSyscalls: "clone3": it is refused to keep user namespaces closed: allowUserNamespaces opens them\n`,
      );
    } finally {
      removeTree(dir);
    }
  });
});

describe("under the runner's own seccomp profile", () => {
  it('stacks its filter under that one (one that refuses pivot_root)', async () => {
    const runner = await startRunner({}, undefined, [fixtureBinary('seccomp-errno'), 'pivot_root', 'EPERM', '--']);
    try {
      const { stdout } = await runScript(runner, 'grep -E "^Seccomp(_filters)?:" /proc/self/status; syscall-probe io_uring_setup; syscall-probe userns');
      // The runner's and mountat's (which hands inotify to the broker too).
      expect(stdout).toBe('Seccomp:\t2\nSeccomp_filters:\t2\nio_uring_setup: EPERM\nclone: EPERM\nunshare: EPERM\n');
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });

  it("starts actions where that profile refuses keyctl, as Docker's default does: the action cannot reach a keyring either", async () => {
    const runner = await startRunner({ allowSyscalls: ['keyctl'] }, undefined, [fixtureBinary('seccomp-errno'), 'keyctl', 'EPERM', '--']);
    try {
      const { stdout, exitCode } = await runScript(runner, 'syscall-probe keyring; syscall-probe io_uring_setup');
      expect([stdout, exitCode]).toEqual(['keyctl: EPERM\nio_uring_setup: EPERM\n', '0']);
    } finally {
      await runner.stop();
      removeTree(runner.dir);
    }
  });
});

describe('mountat exec', () => {
  let root: string;
  let state: string;
  beforeAll(() => {
    root = busyboxRoot();
    state = scratchDir('mountat-state-');
    copyFileSync(probe, join(root, 'bin', 'syscall-probe'));
  });
  afterAll(() => {
    removeTree(root);
    removeTree(state);
  });
  const exec = (flags: string[], script: string) => mountat(['exec', '--root', root, '--state-dir', state, ...flags, '--', '/bin/sh', '-c', script]);

  it('gives the command the same filter, cgroup namespace and keyring', () => {
    const result = exec(
      [],
      'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status; syscall-probe userns; syscall-probe clone3; syscall-probe processes; syscall-probe io_uring_setup; syscall-probe keyring; cut -d: -f3 /proc/self/cgroup | sort -u',
    );
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      'NoNewPrivs:\t1\nSeccomp:\t2\nclone: EPERM\nunshare: EPERM\nclone3: ENOSYS\npthread_create: ok\nposix_spawn: ok\nvfork: ok\nfork: ok\nio_uring_setup: EPERM\nkeyctl: EPERM\n/\n',
    );
    expect(result.status).toBe(0);
  });

  it("runs the command in a session keyring of its own, not exec's", () => {
    const result = spawnSync(
      probe,
      [
        'session',
        KEY,
        '--',
        ...mountatArgv('exec', '--root', root, '--state-dir', state),
        '--allow-syscall',
        'keyctl',
        '--',
        '/bin/syscall-probe',
        'keyring',
        KEY,
      ],
      { encoding: 'utf8' },
    );
    const [outer, ...inner] = result.stdout.split(/(?<=\n)/);
    const own = keyringOf(inner.join(''));
    expect(own).toMatchObject({ uid: '0', name: '_ses', search: 'ENOKEY' });
    expect(own.serial).not.toBe(sessionSerial(outer!));
  });

  it('--allow-user-namespaces and --allow-syscall NAME allow those back', () => {
    const result = exec(
      ['--allow-user-namespaces', '--allow-syscall', 'io_uring_setup', '--allow-syscall', 'personality'],
      'syscall-probe userns; syscall-probe io_uring_setup; syscall-probe personality 400000; syscall-probe keyring',
    );
    expect(result.stderr).toBe(
      "mountat: warning: actions may make user namespaces: every capability inside one, over the mount, network and other namespaces it then makes (the kernel surface behind most local privilege escalations)\nmountat: warning: system calls mountat's seccomp filter refuses are allowed back for actions\n",
    );
    expect(result.stdout).toBe('clone: ok\nunshare: ok\nio_uring_setup: ok\npersonality: ok\nkeyctl: EPERM\n');
  });

  it('--allow-syscall with a name the filter does not refuse, or one that keeps user namespaces closed, is a usage error', () => {
    const read = exec(['--allow-syscall', 'read'], 'true');
    expect(read.stderr).toBe('mountat: --allow-syscall "read": mountat\'s seccomp filter does not refuse it\nrun `mountat help` for usage\n');
    expect(read.status).toBe(2);
    expect(exec(['--allow-syscall', 'clone3'], 'true').stderr).toMatch(
      /^mountat: --allow-syscall "clone3": it is refused to keep user namespaces closed: --allow-user-namespaces opens them\n/,
    );
    // The starter checks its own command line too.
    const starter = spawnSync(join(repo, 'dist', 'mountat-action'), ['--allow-syscalls', 'io_uring_setup,read', '--', 'true'], { encoding: 'utf8' });
    expect([starter.stderr, starter.status]).toEqual(['mountat-action: --allow-syscalls: the filter does not refuse "read"\n', 126]);
    expect(readdirSync(state)).toEqual([]);
  });
});
