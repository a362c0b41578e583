// The runner and `mountat exec` in a user namespace that is not the host's (ids 0-65535 inside are 100000-165535 on
// the host, as a container with hostUsers: false or podman --uidmap has them): started by util-linux's unshare with
// mount and PID namespaces of their own, with and without a network namespace, serving real Runs over the socket; and
// the runner in the project's image under podman with a uid map. In each: the attacks blocked, ordinary build work
// working, nothing left mounted; and, measured from the host, what an action running as uid 0 there is on the host:
// uid 100000, whose capabilities reach nothing of the host's, even out of its root.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunnerProto } from '../src/runner/index.js';
import { attackerBinary, fixtureBinary, installAttacker, rootDevice } from './helpers/attacker.js';
import { buildRunnerImage } from './helpers/docker.js';
import { startPodman, type Podman } from './helpers/podman.js';
import { busyboxRoot, mountTable, removeTree, repo, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, run, spawnRunner, startRunner, type RunnerProcess } from './helpers/runner.js';
import { HOST_BASE, mountsUnderIn, onlyChild, ownInUserns, removeMapShims, usernsWrapper } from './helpers/userns.js';

// As /proc/PID/status shows them: the runner's default set for root actions (CHOWN DAC_OVERRIDE FOWNER FSETID KILL
// SETGID SETUID SETPCAP), none, and every capability this kernel has.
const DEFAULT_CAPS = '00000000000001fb';
const NO_CAPS = '0000000000000000';
const EVERY_CAP = ((1n << BigInt(Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')) + 1)) - 1n).toString(16).padStart(16, '0');

let outside: string;
let secret: string;
let secretText: string;
let tableBefore: string;
let hostnameBefore: string;

beforeAll(() => {
  attackerBinary();
  fixtureBinary('listener-attacker');
  tableBefore = mountTable();
  hostnameBefore = hostname();
  outside = scratchDir('mountat-outside-');
  chmodSync(outside, 0o755);
  secret = join(outside, 'secret');
  secretText = `secret-${process.pid}-${Date.now()}`;
  // Host root's, 0600: what only host root may read.
  writeFileSync(secret, `${secretText}\n`, { mode: 0o600 });
});

afterAll(() => {
  expect(mountTable()).toBe(tableBefore);
  expect(hostname()).toBe(hostnameBefore);
  expect(readFileSync(secret, 'utf8')).toBe(`${secretText}\n`);
  removeTree(outside);
  removeMapShims();
});

/** A runner in the user namespace, PID 1 of its own PID namespace; `inner` its PID here. */
interface UsernsRunner extends RunnerProcess {
  inner: number;
}

/** `mountat runner` with `config` under usernsWrapper: its directory the namespace root's, as a container's volume. */
async function startUsernsRunner(config: object, net: boolean, lockedProc = false): Promise<UsernsRunner> {
  const dir = scratchDir('mountat-userns-runner-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'build'));
  ownInUserns(dir);
  const runner = await startRunner(config, dir, usernsWrapper({ net, lockedProc }));
  return { ...runner, inner: onlyChild(runner.process.pid!) };
}

/** SIGTERM to the runner itself (unshare passes on no signal), then unshare's exit code: the runner's. */
async function stopUsernsRunner(runner: UsernsRunner): Promise<number | null> {
  runner.client.close();
  const exited = new Promise<number | null>((resolve) =>
    runner.process.exitCode !== null ? resolve(runner.process.exitCode) : runner.process.once('exit', (code) => resolve(code)),
  );
  process.kill(runner.inner, 'SIGTERM');
  return exited;
}

/** What the attacks need of a runner: its build directory, its socket (as the runner names it) and a client. */
type Target = Pick<RunnerProcess, 'build' | 'socket' | 'client'>;

let counter = 0;
/** An action directory, the namespace's (as the worker's files in a container are), with the attackers in its root. */
function attackAction(runner: Target, uid = 0): string {
  const id = `u${++counter}`;
  makeAction(runner.build, id);
  const root = join(runner.build, id, 'root');
  installAttacker(root);
  copyFileSync(fixtureBinary('listener-attacker'), join(root, 'bin', 'listener-attacker'));
  chmodSync(join(root, 'bin', 'listener-attacker'), 0o755);
  ownInUserns(join(runner.build, id));
  if (uid !== 0) ownInUserns(join(runner.build, id, 'tmp'), uid);
  return id;
}

async function runScript(runner: Target, script: string, uid = 0): Promise<{ exitCode: string; stdout: string; stderr: string }> {
  const id = attackAction(runner, uid);
  const response = await run(runner.client, requestFor(id, script));
  return {
    exitCode: response.exitCode,
    stdout: readFileSync(join(runner.build, id, 'stdout'), 'utf8'),
    stderr: readFileSync(join(runner.build, id, 'stderr'), 'utf8'),
  };
}

/** The attacks of test/containment.test.ts that matter in a user namespace, one line each, and what each must print. */
function attacks(socket: string, file = secret): Array<[string, string]> {
  const [major, minor] = rootDevice();
  return [
    [`attacker chroot-escape ${file}`, 'blocked: chroot: EPERM'],
    [`attacker userns-escape ${file}`, 'blocked: unshare user+mount namespace: EPERM'],
    ['attacker handle', 'blocked: open_by_handle_at: EPERM'],
    [`attacker mknod-mount ${major} ${minor} ${file}`, 'blocked: mknod: EPERM'],
    ['mount -t tmpfs evil /tmp 2>/tmp/err; echo "mount: $?"', 'mount: 1'],
    ['attacker remount-sys', 'blocked: remount /sys: EPERM'],
    ['attacker keyring-add', 'blocked: add a key to @u: EPERM'],
    ['attacker session-keyring', 'blocked: read the session keyring it inherited: EPERM'],
    ['attacker userns', 'blocked: unshare(CLONE_NEWUSER): EPERM\nblocked: clone(CLONE_NEWUSER): EPERM\nblocked: clone3(CLONE_NEWUSER): ENOSYS'],
    ['attacker io-uring', 'blocked: io_uring_setup: EPERM'],
    [`listener-attacker unix ${socket}`, `blocked: unix ${socket}: ENOENT`],
    ['attacker fds', 'blocked: no fd but 0, 1, 2'],
    ['hostname evil 2>/tmp/err; echo "hostname: $?"', 'hostname: 1'],
    ['echo 1 2>/tmp/err > /proc/sys/vm/drop_caches; echo "drop_caches: $?"', 'drop_caches: 1'],
    ['cd /proc/1/root 2>/tmp/err && echo "ESCAPED: cd /proc/1/root" || echo "blocked: cd /proc/1/root"', 'blocked: cd /proc/1/root'],
  ];
}

/** Runs every attack in one action; each line as it must be. */
async function expectAttacksBlocked(runner: Target, uid = 0, table = attacks(runner.socket)): Promise<void> {
  const { stdout, stderr } = await runScript(runner, table.map(([script]) => script).join('; '), uid);
  expect(stderr).toBe('');
  expect(stdout).toBe(table.map(([, line]) => `${line}\n`).join(''));
}

/** The action's own view of its identity: "<uid_map> | <Uid line> | <CapEff> | <NoNewPrivs>". */
const IDENTITY_SCRIPT =
  'echo "$(tr -s " " < /proc/self/uid_map | sed "s/^ //") | $(grep -E "^(Uid|CapEff|NoNewPrivs):" /proc/self/status | cut -f2- | tr "\\t\\n" "  ")"';

describe.each([
  { net: false, network: 'host' },
  { net: true, network: 'none' },
])('the runner in a user namespace of its own (unshare, network namespace of its own: $net), actions with network "$network"', ({ net, network }) => {
  let runner: UsernsRunner;
  beforeAll(async () => {
    runner = await startUsernsRunner({ network }, net);
  });
  afterAll(async () => {
    expect(await stopUsernsRunner(runner)).toBe(0);
    removeTree(runner.dir);
  });

  it('really is in one: its uid_map is not the identity, and its uid is 100000 on the host', () => {
    expect(readFileSync(`/proc/${runner.inner}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['0', String(HOST_BASE), '65536']);
    expect(readlinkSync(`/proc/${runner.inner}/ns/user`)).not.toBe(readlinkSync('/proc/self/ns/user'));
    expect(/^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${runner.inner}/status`, 'utf8'))?.[1]?.split(/\s+/)).toEqual(Array(4).fill(String(HOST_BASE)));
  });

  it('blocks the attacks, and leaves nothing mounted', async () => {
    await expectAttacksBlocked(runner);
    expect(mountsUnderIn(runner.inner, runner.build)).toEqual([]);
  });

  it("gives the action uid 0 of the namespace, the default capabilities and NO_NEW_PRIVS; sysfs there: a new one only where the namespace owns the runner's network", async () => {
    const { stdout } = await runScript(runner, `${IDENTITY_SCRIPT}; awk '$5 == "/sys" { print $3, $4 }' /proc/self/mountinfo`);
    const [identity, sys] = stdout.trim().split('\n');
    expect(identity).toBe(`0 ${HOST_BASE} 65536 | 0 0 0 0 ${DEFAULT_CAPS} 1 `);
    // Without a network namespace of its own the kernel refuses a new sysfs: the runner's own /sys, bound, stands in.
    const hostSys = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((line) => line.split(' ')[4] === '/sys')!
      .split(' ')[2];
    if (net) expect(sys).toMatch(new RegExp(`^(?!${hostSys} )\\d+:\\d+ /$`));
    else expect(sys).toBe(`${hostSys} /`);
  });

  it('does ordinary build work: setuid to another mapped user, chown to a mapped id, fork, threads, epoll, memfd, inotify', async () => {
    const { stdout, stderr, exitCode } = await runScript(
      runner,
      'attacker setuid 1000; touch /tmp/f && chown 1234:5678 /tmp/f && stat -c "%u %g" /tmp/f; attacker buildwork',
    );
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['uid 1000', '1234 5678']);
    expect(lines.slice(2)).toEqual(expect.arrayContaining(['ok: fork', 'ok: pthread_create and pthread_join', 'ok: inotify saw a write to a file in /tmp']));
    expect(lines.slice(2)).toHaveLength(10);
    expect(exitCode).toBe('0');
  });
});

describe('the runner in a user namespace of its own, with runCommandsAs a mapped uid (4242: 104242 on the host)', () => {
  let runner: UsernsRunner;
  beforeAll(async () => {
    runner = await startUsernsRunner({ runCommandsAs: { userId: 4242, groupId: 4242 } }, false);
  });
  afterAll(async () => {
    expect(await stopUsernsRunner(runner)).toBe(0);
    removeTree(runner.dir);
  });

  it('blocks the attacks, switching back to root too, and leaves nothing mounted', async () => {
    await expectAttacksBlocked(runner, 4242);
    const { stdout } = await runScript(runner, `attacker setuid 0; ${IDENTITY_SCRIPT}`, 4242);
    expect(stdout).toBe(`blocked: setuid: EPERM\n0 ${HOST_BASE} 65536 | 4242 4242 4242 4242 ${NO_CAPS} 1 \n`);
    expect(mountsUnderIn(runner.inner, runner.build)).toEqual([]);
  });
});

it('the runner in a user namespace refuses runCommandsAs a uid the namespace does not map, in one line', async () => {
  const dir = scratchDir('mountat-userns-runner-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'build'));
  ownInUserns(dir);
  try {
    const runner = spawnRunner({ runCommandsAs: { userId: 70000, groupId: 4242 } }, dir, usernsWrapper({ net: false }));
    expect(await runner.exited).toEqual([1, null]);
    expect(runner.output()).toBe(
      "mountat: config.runCommandsAs.userId 70000 is not mapped in this user namespace (uid_map: 0 100000 65536): map it in the container's user namespace (Kubernetes maps 0-65535 with hostUsers: false), or run actions as a mapped id\n",
    );
  } finally {
    removeTree(dir);
  }
});

/**
 * Runs `script` in src/ (holding hello.c) of a root with the host's /usr and /etc bound read-only (gcc, java), on a
 * runner of its own in a user namespace, its actions run as `uid` of the namespace; nothing may be left mounted.
 */
async function fullUserland(uid: number, script: string): Promise<{ exitCode: string; stdout: string; stderr: string }> {
  const runner = await startUsernsRunner(
    {
      ...(uid === 0 ? {} : { runCommandsAs: { userId: uid, groupId: uid } }),
      mounts: [
        { target: 'proc', kind: 'proc' },
        { target: 'sys', kind: 'sysfs' },
        { target: 'usr', kind: 'bind', source: '/usr', attributes: { readOnly: true } },
        { target: 'etc', kind: 'bind', source: '/etc', attributes: { readOnly: true } },
      ],
    },
    false,
  );
  try {
    const root = join(runner.build, 'full', 'root');
    mkdirSync(join(root, 'src'), { recursive: true });
    mkdirSync(join(runner.build, 'full', 'tmp'));
    for (const name of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${name}`, join(root, name));
    writeFileSync(join(root, 'src', 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello from gcc"); return 0; }\n');
    ownInUserns(join(runner.build, 'full'));
    ownInUserns(join(root, 'src'), uid);
    ownInUserns(join(runner.build, 'full', 'tmp'), uid);
    const response = await run(
      runner.client,
      requestFor('full', '', { arguments: ['/bin/sh', '-c', script], environmentVariables: { PATH: '/usr/bin:/bin' }, workingDirectory: 'src' }),
    );
    expect(mountsUnderIn(runner.inner, runner.build)).toEqual([]);
    return {
      exitCode: response.exitCode,
      stdout: readFileSync(join(runner.build, 'full', 'stdout'), 'utf8'),
      stderr: readFileSync(join(runner.build, 'full', 'stderr'), 'utf8'),
    };
  } finally {
    expect(await stopUsernsRunner(runner)).toBe(0);
    removeTree(runner.dir);
  }
}

describe('ordinary build work with the runner in a user namespace', () => {
  it('compiles and runs a C program with gcc, and runs java, as root of the namespace', async () => {
    const java = realpathSync('/usr/bin/java');
    const { stdout, stderr, exitCode } = await fullUserland(0, `gcc -O2 -o hello hello.c && ./hello && ${java} -version 2>&1 | head -1`);
    expect(stderr).toBe('');
    const out = stdout.split('\n');
    expect(out[0]).toBe('hello from gcc');
    expect(out[1]).toMatch(/^openjdk version "/);
    expect(exitCode).toBe('0');
  });

  it('compiles and runs a C program with gcc as runCommandsAs 4242; its file is 104242 on the host', async () => {
    const { stdout, stderr, exitCode } = await fullUserland(4242, 'gcc -O2 -o hello hello.c && ./hello && stat -c "%u %a" hello');
    expect(stderr).toBe('');
    expect(stdout).toBe('hello from gcc\n4242 755\n');
    expect(exitCode).toBe('0');
  });
});

/** The host's PIDs of the processes whose stdout is `file`. */
function writingTo(file: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/1`) === file;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Run by Node as `node -e PROBE FILE PID`: one line per host-root-only act, with the errno it was refused with. */
const HOST_ROOT_PROBE = [
  'const fs = require("fs"); const [file, pid] = process.argv.slice(1);',
  'const acts = [["open host root\\x27s 0600 file", () => fs.openSync(file, "r")], ["signal a process of host root\\x27s", () => process.kill(Number(pid), 0)],',
  '  ["write a sysctl", () => fs.writeFileSync("/proc/sys/vm/drop_caches", "1")]];',
  'for (const [what, act] of acts) { try { act(); console.log(`${what}: ESCAPED`); } catch (e) { console.log(`${what}: ${e.code}`); } }',
].join(' ');

describe('the worst case, measured from the host: an action running as uid 0 of the namespace', () => {
  let runner: UsernsRunner;
  beforeAll(async () => {
    runner = await startUsernsRunner({}, false);
  });
  afterAll(async () => {
    expect(await stopUsernsRunner(runner)).toBe(0);
    removeTree(runner.dir);
  });

  it('is uid 100000 on the host, its capabilities count only in its namespace, and even out of its root it reaches nothing of host root', async () => {
    const id = attackAction(runner);
    const release = join(runner.build, id, 'tmp', 'release');
    const done = run(runner.client, requestFor(id, 'touch /tmp/ready; while [ ! -e /tmp/release ]; do sleep 0.05; done; echo released'));
    const ready = join(runner.build, id, 'tmp', 'ready');
    for (let i = 0; i < 250 && spawnSync('test', ['-e', ready]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      const [pid] = writingTo(join(runner.build, id, 'stdout'));
      expect(pid).toBeDefined();
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s+(.*)$`, 'm').exec(status)?.[1]?.split(/\s+/);
      // Read from the host's user namespace, Uid and Gid are the host's ids: 100000, not 0.
      expect(field('Uid')).toEqual(Array(4).fill(String(HOST_BASE)));
      expect(field('Gid')).toEqual(Array(4).fill(String(HOST_BASE)));
      // CapEff is printed as the task holds it, untranslated: these bits count in the task's own user namespace
      // (the runner's) and those it owns, not in the host's.
      expect(field('CapEff')).toEqual([DEFAULT_CAPS]);
      expect(field('NoNewPrivs')).toEqual(['1']);
      expect(readlinkSync(`/proc/${pid}/ns/user`)).toBe(readlinkSync(`/proc/${runner.inner}/ns/user`));
      expect(readlinkSync(`/proc/${pid}/ns/user`)).not.toBe(readlinkSync('/proc/self/ns/user'));

      // Out of its root, with every capability in its user namespace (what a kernel bug in the sandbox would leave
      // it at worst): nsenter joins that user namespace as its uid 0 and stays in the host's mount, UTS and PID
      // namespaces. Each host-root-only act is refused: a 0600 file of host root's it can reach by path, a signal to
      // a process of host root's (this test), the hostname, a mount, a sysctl.
      const escaped = spawnSync(
        'nsenter',
        [
          `--target=${pid}`,
          '--user',
          '--',
          'sh',
          '-c',
          [
            'grep -E "^(Uid|CapEff):" /proc/self/status | tr -s "\\t" " "',
            // The system calls' own answers, through Node (the host's): open, kill, a sysctl's write.
            `${process.execPath} -e '${HOST_ROOT_PROBE}' ${secret} ${process.pid}`,
            'hostname evil 2>&1; echo "hostname: $?"',
            `mount -t tmpfs evil ${outside} 2>&1; echo "mount: $?"`,
          ].join('; '),
        ],
        { encoding: 'utf8' },
      );
      expect(escaped.stderr).toBe('');
      const lines = escaped.stdout.trim().split('\n');
      // Every capability there is, in its namespace; uid 0 there (100000 here).
      expect(lines[0]).toBe('Uid: 0 0 0 0');
      expect(lines[1]).toBe(`CapEff: ${EVERY_CAP}`);
      expect(lines.slice(2, 5)).toEqual(["open host root's 0600 file: EACCES", "signal a process of host root's: EPERM", 'write a sysctl: EACCES']);
      // util-linux's hostname and mount, refused by the kernel (EPERM): their own wording.
      expect(lines.slice(5).join('\n')).toMatch(
        /^hostname: you must be root to change the host name\nhostname: 1\nmount: .*permission denied\.\n(.*\n)?mount: 32$/,
      );
    } finally {
      writeFileSync(release, '');
    }
    expect((await done).exitCode).toBe('0');
    expect(readFileSync(secret, 'utf8')).toBe(`${secretText}\n`);
    expect(hostname()).toBe(hostnameBefore);
  });
});

it("where /proc's covers are locked (made outside the runner's user namespace), the first action fails with the one line that names the fix", async () => {
  const runner = await startUsernsRunner({}, false, true);
  try {
    const id = attackAction(runner);
    const failure = await run(runner.client, requestFor(id, 'true')).then(
      () => 'no error',
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    expect(failure).toMatch(
      /proc is refused in this user namespace: masks over \/proc made outside it leave no fully visible proc here; run it with an unmasked \/proc \(podman --security-opt unmask=ALL, Kubernetes securityContext\.procMount: Unmasked\)/,
    );
    expect(mountsUnderIn(runner.inner, runner.build)).toEqual([]);
  } finally {
    expect(await stopUsernsRunner(runner)).toBe(0);
    removeTree(runner.dir);
  }
});

describe('mountat exec in a user namespace of its own (unshare)', () => {
  it.each([false, true])('contains the command (network namespace of its own: %s), and leaves nothing mounted', (net) => {
    const root = busyboxRoot();
    installAttacker(root);
    ownInUserns(root);
    const state = scratchDir('mountat-state-');
    ownInUserns(state);
    try {
      // No runner, no socket: the rest of the runner's attacks.
      const table = attacks('/nonexistent/runner.sock').filter(([line]) => !line.startsWith('listener-attacker'));
      // After the command: the mounts under its root left in the namespace mountat exec ran in.
      const result = spawnSync(
        usernsWrapper({ net })[0]!,
        [
          ...usernsWrapper({ net }).slice(1),
          'sh',
          '-c',
          `"$@"; rc=$?; echo "left mounted: $(cut -d" " -f5 /proc/self/mountinfo | grep -c "^${root}")"; exit $rc`,
          'sh',
          process.execPath,
          join(repo, 'bin', 'mountat.js'),
          'exec',
          '--root',
          root,
          '--state-dir',
          state,
          '--',
          '/bin/sh',
          '-c',
          `${table.map(([script]) => script).join('; ')}; ${IDENTITY_SCRIPT}; attacker buildwork | grep -c ^ok:`,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(
        [...table.map(([, line]) => line), `0 ${HOST_BASE} 65536 | 0 0 0 0 ${DEFAULT_CAPS} 1 `, '10', 'left mounted: 0', ''].join('\n'),
      );
      expect(result.status).toBe(0);
    } finally {
      removeTree(root);
      removeTree(state);
    }
  });
});

describe("the runner in the project's image under podman with a uid map (0-65535 → 100000-165535)", () => {
  const IMAGE = 'localhost/mountat-test-userns-runner:test';
  let podman: Podman;
  beforeAll(async () => {
    podman = await startPodman();
    // As test/pod.test.ts builds it: the Dockerfile on bases made from Debian's packages (about a minute, most of it
    // npm ci).
    await buildRunnerImage(podman.podman, {
      image: IMAGE,
      runtimeBase: 'localhost/mountat-test-userns-base/runtime:local',
      buildBase: 'localhost/mountat-test-userns-base/build:local',
    });
  }, 10 * 60_000);
  afterAll(async () => {
    if (!podman) return;
    await podman.podman(['rm', '--all', '--force']);
    await podman.podman(['rmi', '--all', '--force']);
    podman.remove();
  }, 120_000);

  interface Container {
    name: string;
    /** The host's directory mounted at /worker: the build directory and the socket, the namespace root's. */
    worker: string;
    runner: Target & { output: () => string };
    /** The runner's PID on the host (tini's child). */
    pid: number;
  }

  /**
   * One container of the image, the runner as its entrypoint starts it, with `config` at /config/runner.json and
   * `extra` podman options; resolves once the runner has logged `until` (or exited).
   */
  async function startContainer(name: string, config: object, extra: string[], until = '"runner ready"'): Promise<Container> {
    const worker = scratchDir('mountat-userns-worker-');
    chmodSync(worker, 0o755);
    mkdirSync(join(worker, 'build'));
    writeFileSync(
      join(worker, 'runner.json'),
      JSON.stringify({ buildDirectoryPath: '/worker/build', grpcServers: [{ listenPaths: ['/worker/runner'] }], ...config }),
    );
    ownInUserns(worker);
    await podman.podman([
      'run',
      '--detach',
      '--name',
      name,
      '--network',
      'none',
      '--uidmap',
      `0:${HOST_BASE}:65536`,
      '--gidmap',
      `0:${HOST_BASE}:65536`,
      // The runner's own capabilities, held in the container's user namespace only; podman's default set has the rest.
      '--cap-add',
      'SYS_ADMIN',
      '--volume',
      `${worker}:/worker`,
      '--volume',
      `${join(worker, 'runner.json')}:/config/runner.json:ro`,
      ...extra,
      IMAGE,
    ]);
    let logs = '';
    for (let i = 0; i < 300 && !logs.includes(until); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      logs = await podman.podman(['logs', name]).catch(() => '');
      if ((await podman.podman(['inspect', '--format', '{{.State.Running}}', name])).trim() !== 'true') break;
    }
    const tini = Number((await podman.podman(['inspect', '--format', '{{.State.Pid}}', name])).trim());
    const pid = tini > 0 ? onlyChild(tini) : 0;
    const client = new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${join(worker, 'runner')}`, credentials.createInsecure());
    const runner = { build: join(worker, 'build'), socket: '/worker/runner', client, output: () => logs };
    return { name, worker, runner, pid };
  }

  /** Stops the container (SIGTERM to tini, passed on to the runner): the runner's exit code; then removes it. */
  async function stopContainer(container: Container): Promise<number> {
    container.runner.client.close();
    await podman.podman(['stop', '--time', '20', container.name]);
    const code = Number((await podman.podman(['inspect', '--format', '{{.State.ExitCode}}', container.name])).trim());
    // conmon's cleanup (unmounting the container's shm) can still be running as `stop` returns: `rm` then meets
    // "unlinkat …/userdata/shm: device or resource busy" (seen in CI), having removed the container's record already.
    // Again, a few times, until podman knows no such container.
    let busy = false;
    for (let attempt = 0; ; attempt++) {
      try {
        await podman.podman(['rm', container.name]);
        break;
      } catch (error) {
        if (busy && /no such container/.test(String(error))) break;
        busy = /device or resource busy/.test(String(error));
        if (attempt >= 10 || !busy) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    removeTree(container.worker);
    return code;
  }

  describe('with /proc unmasked (--security-opt unmask=ALL)', () => {
    let container: Container;
    beforeAll(async () => {
      container = await startContainer(
        'mountat-userns-unmasked',
        {
          mounts: [
            { target: 'proc', kind: 'proc' },
            { target: 'sys', kind: 'sysfs' },
            { target: 'usr', kind: 'bind', source: '/usr', attributes: { readOnly: true } },
            { target: 'etc', kind: 'bind', source: '/etc', attributes: { readOnly: true } },
          ],
        },
        ['--security-opt', 'unmask=ALL'],
      );
      expect(container.runner.output()).toContain('"runner ready"');
    }, 60_000);
    afterAll(async () => {
      expect(await stopContainer(container)).toBe(0);
    }, 60_000);

    it("is in a user namespace: the runner's uid_map is not the identity, its uid 100000 on the host", () => {
      expect(readFileSync(`/proc/${container.pid}/uid_map`, 'utf8').trim().split(/\s+/)).toEqual(['0', String(HOST_BASE), '65536']);
      expect(/^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${container.pid}/status`, 'utf8'))?.[1]?.split(/\s+/)).toEqual(Array(4).fill(String(HOST_BASE)));
    });

    it('blocks the attacks (a 0600 file of host root in the volume too), and leaves nothing mounted', async () => {
      // Host root's, in the volume: unmapped in the container, so not even its root may read it.
      writeFileSync(join(container.worker, 'secret'), 'host root only\n', { mode: 0o600 });
      await expectAttacksBlocked(container.runner, 0, [
        ...attacks('/worker/runner', '/worker/secret'),
        ['cat /proc/1/root/worker/secret 2>/tmp/err || echo "blocked: /worker/secret"', 'blocked: /worker/secret'],
      ]);
      expect(mountsUnderIn(container.pid, '/worker/build')).toEqual([]);
    });

    it("gets the container's own /sys, bound and covered: podman made the network namespace outside the container's user namespace", async () => {
      const { stdout } = await runScript(container.runner, `awk '$5 == "/sys" { print $3, $4, $6 }' /proc/self/mountinfo; ls /sys/firmware | wc -l`);
      const containerSys = readFileSync(`/proc/${container.pid}/mountinfo`, 'utf8')
        .split('\n')
        .find((line) => line.split(' ')[4] === '/sys')!
        .split(' ')[2];
      expect(stdout).toMatch(new RegExp(`^${containerSys} / ro,\\S*\n0\n$`));
    });

    it("does ordinary build work with the image's own tools (node, tar), as uid 0 of the namespace: 100000 on the host", async () => {
      const id = attackAction(container.runner);
      const root = join(container.runner.build, id, 'root');
      // The image's /usr and /etc are bound over the root's: its programs find their libraries through these links.
      for (const name of ['lib', 'lib64']) symlinkSync(`usr/${name}`, join(root, name));
      ownInUserns(root);
      const script = [
        'node -e "require(\\"fs\\").writeFileSync(\\"/tmp/out.txt\\", String(process.getuid()) + \\"\\\\n\\")"',
        'tar -C /tmp -cf /tmp/out.tar out.txt && tar -tf /tmp/out.tar',
        'cat /tmp/out.txt',
        'touch /tmp/ready; while [ ! -e /tmp/release ]; do sleep 0.05; done',
      ].join(' && ');
      const done = run(container.runner.client, requestFor(id, script, { environmentVariables: { PATH: '/usr/local/bin:/usr/bin:/bin' } }));
      const ready = join(container.runner.build, id, 'tmp', 'ready');
      for (let i = 0; i < 500 && spawnSync('test', ['-e', ready]).status !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      try {
        // From the host: the action's shell is uid 100000, in the container's user namespace.
        const [pid] = writingTo(`/worker/build/${id}/stdout`);
        expect(pid).toBeDefined();
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        expect(/^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/)).toEqual(Array(4).fill(String(HOST_BASE)));
        expect(/^CapEff:\s+(.*)$/m.exec(status)?.[1]).toBe(DEFAULT_CAPS);
        expect(readlinkSync(`/proc/${pid}/ns/user`)).toBe(readlinkSync(`/proc/${container.pid}/ns/user`));
      } finally {
        writeFileSync(join(container.runner.build, id, 'tmp', 'release'), '');
      }
      const response = await done;
      expect(readFileSync(join(container.runner.build, id, 'stderr'), 'utf8')).toBe('');
      expect(readFileSync(join(container.runner.build, id, 'stdout'), 'utf8')).toBe('out.txt\n0\n');
      expect(response.exitCode).toBe('0');
      expect(mountsUnderIn(container.pid, '/worker/build')).toEqual([]);
    });
  });

  it("with /proc masked (podman's default): the masks are the container's own, so a new proc is allowed, and the attacks are blocked", async () => {
    // runc makes the user and mount namespaces first and masks /proc inside them: the kernel locks only the mounts
    // copied in from the host, not those masks, so /proc counts as fully visible (mount_too_revealing) there.
    const container = await startContainer('mountat-userns-masked', {}, []);
    try {
      const { stdout } = await runScript(container.runner, 'ls /proc | grep -c "^[0-9]"; head -c 64 /proc/keys | wc -c');
      // The runner's own /proc in the container is masked (podman's masks: /proc/keys among them); the action's is a
      // new one of its PID namespace (init, sh, ls, grep), its /proc/keys covered by mountat.
      expect(readFileSync(`/proc/${container.pid}/mountinfo`, 'utf8')).toMatch(/ \/proc\/keys /);
      const [pids, keys] = stdout.trim().split('\n').map(Number);
      expect(pids).toBeLessThanOrEqual(4);
      expect(keys).toBe(0);
      await expectAttacksBlocked(container.runner, 0, attacks('/worker/runner', '/worker/secret'));
      expect(mountsUnderIn(container.pid, '/worker/build')).toEqual([]);
    } finally {
      expect(await stopContainer(container)).toBe(0);
    }
  }, 60_000);
});
