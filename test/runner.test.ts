// The runner over a real UNIX socket with a real gRPC client, running real actions.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountat, mountatArgv } from './helpers/cli.js';
import { listing } from './helpers/oci.js';
import { actionPlanMounts, coverPoints, defaultPlanMountCount, processWith, mountTable, mountsUnder, removeTree, scratchDir } from './helpers/roots.js';
import { checkReadiness, freePort, makeAction, requestFor, resourceUsage, run, spawnRunner, startRunner, type RunnerProcess } from './helpers/runner.js';

let runner: RunnerProcess;
let tableBefore: string;
beforeAll(async () => {
  tableBefore = mountTable();
  runner = await startRunner({ readinessCheckingPathnames: [] });
});
afterAll(async () => {
  expect(await runner.stop()).toBe(0);
  expect(mountTable()).toBe(tableBefore);
  removeTree(runner.dir);
});

let counter = 0;
function newAction(): string {
  const id = `a${++counter}`;
  makeAction(runner.build, id);
  return id;
}

describe('Run', () => {
  it('gives the action /proc, /sys and its own /tmp, and reports exit code, output and resource usage', async () => {
    const id = newAction();
    const script = [
      'readlink /proc/self/exe',
      // Sorted: mountinfo lists mounts by id, and what the runner made ahead has the lower ids.
      'cut -d" " -f5 /proc/self/mountinfo | grep -E "^/(proc|sys|tmp)(/|$)" | sort | tr "\\n" " "; echo',
      'ls /sys/class | grep -c .',
      'echo "in tmp" > /tmp/file && cat /tmp/file',
      'echo "TMPDIR=$TMPDIR"',
      'echo "pids: $(ls /proc | grep -c "^[0-9]")"',
      'echo to-stderr >&2',
      'exit 3',
    ].join('; ');
    const response = await run(runner.client, requestFor(id, script));
    expect(response.exitCode).toBe('3');
    const out = readFileSync(join(runner.build, id, 'stdout'), 'utf8').split('\n');
    expect(out[0]).toBe('/bin/busybox');
    // proc and sysfs hardened (the default): their covers are mounted on them.
    expect(out[1]).toBe([...['/proc', ...coverPoints('proc', '/proc'), '/sys', ...coverPoints('sysfs', '/sys'), '/tmp'].sort(), ''].join(' '));
    expect(Number(out[2])).toBeGreaterThan(0);
    expect(out.slice(3, 5)).toEqual(['in tmp', 'TMPDIR=/tmp']);
    // Its own PID namespace: the init, sh, the $(…) subshell, ls and grep; the runner's would show dozens.
    expect(Number(out[5]?.replace('pids: ', ''))).toBeLessThanOrEqual(5);
    expect(readFileSync(join(runner.build, id, 'stderr'), 'utf8')).toBe('to-stderr\n');
    // /tmp was the request's temporary directory.
    expect(readFileSync(join(runner.build, id, 'tmp', 'file'), 'utf8')).toBe('in tmp\n');
    const usage = resourceUsage(response);
    expect(usage).toMatchObject({ terminationSignal: '' });
    expect(Number(usage.maximumResidentSetSize)).toBeGreaterThan(100_000);
    expect(mountsUnder(runner.build)).toEqual([]);
    expect(readdirSync(join(runner.build, id, 'root')).sort()).toEqual(['bin', 'usr']);
  });

  it("finds arguments[0] through the action's PATH inside the root, without /usr/bin/env", async () => {
    const id = newAction();
    execFileSync('rm', ['-rf', join(runner.build, id, 'root', 'usr')]);
    const response = await run(
      runner.client,
      requestFor(id, '', { arguments: ['echo', 'found', 'in', 'PATH'], environmentVariables: { PATH: '/nowhere:/bin' } }),
    );
    expect(response.exitCode).toBe('0');
    expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe('found in PATH\n');
  });

  it("starts in the working directory and passes exactly the request's environment", async () => {
    const id = newAction();
    mkdirSync(join(runner.build, id, 'root', 'work', 'dir'), { recursive: true });
    const response = await run(
      runner.client,
      requestFor(id, 'pwd; env | grep -v ^SHLVL= | sort', { workingDirectory: 'work/dir', environmentVariables: { PATH: '/bin', ONLY: 'this' } }),
    );
    expect(response.exitCode).toBe('0');
    expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe('/work/dir\nONLY=this\nPATH=/bin\nPWD=/work/dir\nTMPDIR=/tmp\n');
  });

  it('starts the action with no signal blocked or ignored, as a shell would', async () => {
    // The runner's own ignored signals (Node's SIGPIPE and SIGXFSZ, and glibc's two internal ones,
    // 32 and 33, which glibc's signal() refuses to touch) must not reach the action, since ignored
    // signals survive exec.
    const id = newAction();
    const response = await run(runner.client, requestFor(id, '', { arguments: ['grep', '-E', '^Sig(Blk|Ign):', '/proc/self/status'] }));
    expect(response.exitCode).toBe('0');
    expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('reports the signal that killed the action, with exit code -1', async () => {
    const id = newAction();
    const response = await run(runner.client, requestFor(id, 'kill -9 $$'));
    expect(response.exitCode).toBe('-1');
    expect(resourceUsage(response)).toMatchObject({ terminationSignal: 'KILL' });
    expect(mountsUnder(runner.build)).toEqual([]);
  });

  it('answers INVALID_ARGUMENT when the command is not in the root, and tears down', async () => {
    const id = newAction();
    await expect(run(runner.client, requestFor(id, '', { arguments: ['no-such-tool'] }))).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'cannot start "no-such-tool" in the input root: ENOENT',
    });
    expect(mountsUnder(runner.build)).toEqual([]);
    expect(readdirSync(join(runner.build, id, 'root')).sort()).toEqual(['bin', 'usr']);
  });
});

describe('hostile requests: the documented status, nothing mounted, nothing created', () => {
  const cases: Array<[string, (id: string) => Parameters<typeof requestFor>[2] & object, string]> = [
    ['an input root with ..', (id) => ({ inputRootDirectory: `${id}/../${id}/root` }), 'input_root_directory "ID/../ID/root" contains ".."'],
    ['an absolute input root', () => ({ inputRootDirectory: '/etc' }), 'input_root_directory "/etc" is absolute; it must be relative'],
    ['a missing input root', (id) => ({ inputRootDirectory: `${id}/nope` }), 'input_root_directory "ID/nope" does not exist (ENOENT)'],
    [
      'a symlinked input root',
      (id) => (symlinkSync('/', join(runner.build, id, 'evil')), { inputRootDirectory: `${id}/evil` }),
      'input_root_directory "ID/evil" is or passes through a symlink (ELOOP)',
    ],
    [
      'a symlinked working directory',
      (id) => (symlinkSync('/etc', join(runner.build, id, 'root', 'wd')), { workingDirectory: 'wd' }),
      'working_directory "wd" is or passes through a symlink (ELOOP)',
    ],
    ['a working directory with ..', () => ({ workingDirectory: '../..' }), 'working_directory "../.." contains ".."'],
    ['a missing working directory', () => ({ workingDirectory: 'no/such' }), 'working_directory "no/such" does not exist (ENOENT)'],
    ['an existing stdout file', (id) => (writeFileSync(join(runner.build, id, 'stdout'), 'old'), {}), 'stdout_path "ID/stdout" already exists (EEXIST)'],
    [
      'a stdout path through a symlink',
      (id) => (symlinkSync('/tmp', join(runner.build, id, 'out')), { stdoutPath: `${id}/out/stdout` }),
      'stdout_path\'s directory "ID/out" is or passes through a symlink (ELOOP)',
    ],
    ['an empty argument list', () => ({ arguments: [] }), 'arguments is empty: there is no command to run'],
    ['a temporary directory outside', () => ({ temporaryDirectory: '../../tmp' }), 'temporary_directory "../../tmp" contains ".."'],
  ];
  it.each(cases)('%s', async (_name, arrange, message) => {
    const id = newAction();
    const extra = arrange(id);
    const before = listing(runner.build);
    const table = mountTable();
    await expect(run(runner.client, requestFor(id, 'echo should not run', extra))).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: message.replaceAll('ID', id),
    });
    expect(mountTable()).toBe(table);
    expect(listing(runner.build)).toEqual(before);
  });
});

/** The parent pid of a process, from /proc. */
function parentOf(pid: number): number {
  return Number(/^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** The pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return parentOf(Number(name)) === pid;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
/** A child listed a moment ago may be gone by now (the server killed in the round before, being reaped). */
const commandLineIfAlive = (pid: number) => {
  try {
    return commandLine(pid);
  } catch {
    return undefined;
  }
};

describe('the starter server', () => {
  it("forks each action's init from one process of the runner's (nothing executed per action), and starts a new one when it is gone", async () => {
    const servers: number[] = [];
    for (const round of [1, 2]) {
      const id = newAction();
      const done = run(runner.client, requestFor(id, `echo started; exec sleep 31.${round}`));
      let init: number | undefined;
      for (let i = 0; i < 300 && init === undefined; i++) {
        const server = childrenOf(runner.process.pid!).find((pid) => commandLineIfAlive(pid) === 'mountat-action --serve');
        init = server === undefined ? undefined : childrenOf(server)[0];
        if (init === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(init).toBeDefined();
      const server = parentOf(init!);
      servers.push(server);
      // A fork of the server, not a program of its own: the runner executed nothing for it; and it
      // is pid 1 of the action's PID namespace (the second NSpid).
      expect(commandLine(init!)).toBe('mountat-action --serve');
      expect(/^NSpid:\s*\d+\s+(\d+)$/m.exec(readFileSync(`/proc/${init}/status`, 'utf8'))?.[1]).toBe('1');
      // Killed under it, the server takes this action's init with it, and a new one serves the next:
      // that action's end is lost. An init killed alone (as an OOM kill of the whole action may)
      // is the action killed, which the server that reaps it says ("K").
      process.kill(round === 1 ? server : init!, 'SIGKILL');
      if (round === 1) {
        await expect(done).rejects.toMatchObject({
          code: status.INTERNAL,
          details: "the action's starter failed: the starter ended without saying how the action ended",
        });
      } else {
        const response = await done;
        expect(response.exitCode).toBe('-1');
        expect(resourceUsage(response)).toMatchObject({ terminationSignal: 'KILL' });
      }
      expect(mountsUnder(runner.build)).toEqual([]);
    }
    expect(servers[1]).not.toBe(servers[0]);
  });

  it('starts an action whose request is too large to serve the direct way (executing the starter), the others untouched', async () => {
    // One in flight through the server meanwhile: it must not be disturbed (a request too large for
    // the socket once made the runner replace its server, and the actions of the old one died).
    const other = newAction();
    const running = run(runner.client, requestFor(other, 'sleep 0.5; echo still here'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    // 240 KiB: over the socket's send buffer (208 KiB) yet under the server's old 256 KiB limit; 320: over both.
    for (const kib of [240, 320]) {
      const id = newAction();
      // Each string at most 128 KiB (the kernel's limit per argument).
      const env: Record<string, string> = { PATH: '/bin' };
      for (let i = 0; i < kib / 40; i++) env[`BIG${i}`] = 'x'.repeat(40 * 1024);
      const response = await run(runner.client, requestFor(id, 'echo ${#BIG0}', { environmentVariables: env }));
      expect(response.exitCode).toBe('0');
      expect(readFileSync(join(runner.build, id, 'stdout'), 'utf8')).toBe(`${40 * 1024}\n`);
    }
    expect((await running).exitCode).toBe('0');
    expect(readFileSync(join(runner.build, other, 'stdout'), 'utf8')).toBe('still here\n');
  });
});

describe('cancellation and concurrency', () => {
  it('kills the whole process tree, whose mounts go with it, when bb_worker cancels', async () => {
    const id = newAction();
    // Distinct durations mark this action's processes for pgrep.
    const marks = [60, 61, 62].map((n) => `${n}.${counter}7`);
    const call = runner.client.Run(requestFor(id, `sleep ${marks[0]} & sleep ${marks[1]} & echo started; exec sleep ${marks[2]}`), () => {});
    for (let i = 0; i < 200 && !existsSync(join(runner.build, id, 'stdout')); i++) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 200 && !readFileSync(join(runner.build, id, 'stdout'), 'utf8').includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
    // Its mounts are in its own namespace only (on a detached copy of its root), never here.
    expect(actionPlanMounts(await processWith(`sleep ${marks[2]}`))).toHaveLength(defaultPlanMountCount());
    expect(mountsUnder(runner.build), mountTable()).toEqual([]);
    call.cancel();
    const running = () => marks.some((mark) => spawnSync('pgrep', ['-f', `sleep ${mark}`]).status === 0);
    for (let i = 0; i < 200 && running(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(mountsUnder(runner.build)).toEqual([]);
    for (const mark of marks) expect(spawnSync('pgrep', ['-f', `sleep ${mark}`]).status, mark).toBe(1);
  });

  it('runs 32 actions at once, each seeing only its own root, /tmp and processes', async () => {
    const ids = Array.from({ length: 32 }, () => newAction());
    for (const id of ids) writeFileSync(join(runner.build, id, 'root', 'whoami'), id);
    const script = 'cat /whoami; echo; cat /tmp/* 2>/dev/null | wc -l; echo mine > /tmp/$(cat /whoami); ls /tmp; echo "pids: $(ls /proc | grep -c "^[0-9]")"';
    const responses = await Promise.all(ids.map((id) => run(runner.client, requestFor(id, script))));
    expect(responses.map((r) => r.exitCode)).toEqual(ids.map(() => '0'));
    for (const id of ids) {
      const lines = readFileSync(join(runner.build, id, 'stdout'), 'utf8')
        .trim()
        .split('\n');
      expect(lines[0]).toBe(id);
      expect(lines[1]?.trim()).toBe('0');
      expect(lines[2]).toBe(id);
      expect(Number(lines[3]?.replace('pids: ', ''))).toBeLessThanOrEqual(5);
    }
    expect(mountsUnder(runner.build)).toEqual([]);
  });
});

describe('CheckReadiness', () => {
  it('is OK for an existing path, NOT_FOUND for a missing one', async () => {
    mkdirSync(join(runner.build, 'check_readiness'));
    await expect(checkReadiness(runner.client, 'check_readiness')).resolves.toBeUndefined();
    await expect(checkReadiness(runner.client, join(realpathSync(runner.build), 'check_readiness'))).resolves.toBeUndefined();
    await expect(checkReadiness(runner.client, 'missing')).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(checkReadiness(runner.client, '../etc')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    // The empty path is the build directory itself.
    await expect(checkReadiness(runner.client, '')).resolves.toBeUndefined();
  });

  it('answers `mountat probe` by socket or by config, and names what is wrong in one line', () => {
    const bySocket = mountat(['probe', '--socket', runner.socket]);
    expect([bySocket.status, bySocket.stdout, bySocket.stderr]).toEqual([0, `ready: unix://${runner.socket}\n`, '']);
    const byConfig = mountat(['probe', '--config', join(runner.dir, 'config.json'), '--path', 'check_readiness']);
    expect([byConfig.status, byConfig.stdout]).toEqual([0, `ready: unix://${runner.socket}\n`]);

    const missingPath = mountat(['probe', '--socket', runner.socket, '--path', 'missing']);
    expect(missingPath.status).toBe(1);
    expect(missingPath.stderr).toBe(`mountat: probe unix://${runner.socket}: NOT_FOUND: path "missing" does not exist in the build directory\n`);
    const noSocket = mountat(['probe', '--socket', join(runner.dir, 'no-such.sock'), '--timeout', '2']);
    expect(noSocket.status).toBe(1);
    expect(noSocket.stderr).toMatch(/^mountat: probe unix:\/\/\S+no-such\.sock: UNAVAILABLE: [^\n]*ENOENT[^\n]*\n$/);
    for (const [args, message] of [
      [['probe'], '--socket PATH or --config FILE is required'],
      [['probe', '--socket', runner.socket, '--config', 'x'], 'give --socket or --config, not both'],
      [['probe', '--socket', runner.socket, '--timeout', '0'], '--timeout "0" is not a positive number of seconds'],
    ] as const) {
      const result = mountat([...args]);
      expect([result.status, result.stderr.split('\n')[0]]).toEqual([2, `mountat: ${message}`]);
    }
  });
});

describe('a runner of its own', () => {
  it('is UNAVAILABLE while a readiness-checking pathname is missing', async () => {
    const flag = join(runner.dir, 'ready-flag');
    const own = await startRunner({ readinessCheckingPathnames: [flag] });
    try {
      mkdirSync(join(own.build, 'check_readiness'));
      await expect(checkReadiness(own.client, 'check_readiness')).rejects.toMatchObject({ code: status.UNAVAILABLE, details: `not ready: ${flag} missing` });
      const probe = mountat(['probe', '--socket', own.socket]);
      expect([probe.status, probe.stderr]).toEqual([1, `mountat: probe unix://${own.socket}: UNAVAILABLE: not ready: ${flag} missing\n`]);
      writeFileSync(flag, '');
      expect(mountat(['probe', '--socket', own.socket]).status).toBe(0);
      await expect(checkReadiness(own.client, 'check_readiness')).resolves.toBeUndefined();
    } finally {
      await own.stop();
      removeTree(own.dir);
    }
  });

  it('sees a file system mounted over the build directory itself after it started, as bb_worker mounts its FUSE build directory', async () => {
    const own = await startRunner({ readinessCheckingPathnames: [] });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'worker-late', own.build]);
      try {
        mkdirSync(join(own.build, 'check_readiness'));
        await expect(checkReadiness(own.client, 'check_readiness')).resolves.toBeUndefined();
        makeAction(own.build, 'late');
        writeFileSync(join(own.build, 'late', 'root', 'on-the-mount'), 'yes\n');
        const response = await run(own.client, requestFor('late', 'cat /on-the-mount'));
        expect([Number(response.exitCode), readFileSync(join(own.build, 'late', 'stdout'), 'utf8')]).toEqual([0, 'yes\n']);
      } finally {
        execFileSync('umount', [own.build]);
      }
      // And the directory underneath again once the worker's mount is gone.
      await expect(checkReadiness(own.client, 'check_readiness')).rejects.toMatchObject({ code: status.NOT_FOUND });
    } finally {
      await own.stop();
      removeTree(own.dir);
    }
  });

  it('stops cleanly on a SIGTERM that comes while it is still starting (its handlers come first)', async () => {
    const dir = scratchDir('mountat-runner-');
    try {
      // `temporaryDirectories` is a bb_runner option mountat ignores: its warning is the first line
      // the runner logs once it is starting, before its servers are bound.
      const runner = spawnRunner({ temporaryDirectories: [] }, dir);
      // One SIGTERM only: a second one, as for any process, ends it by the signal's default action.
      let sent = false;
      const onData = () => {
        if (!sent && runner.output().includes('bb_runner option accepted but not used')) {
          sent = true;
          runner.process.kill('SIGTERM');
        }
      };
      runner.process.stdout!.on('data', onData);
      runner.process.stderr!.on('data', onData);
      expect(await runner.exited).toEqual([0, null]);
      expect(runner.output()).toContain('"msg":"stopping"');
      expect(runner.output()).toContain('"runner stopped"');
      expect(readdirSync(join(dir, 'state')).filter((name) => name !== 'runner.lock')).toEqual([]);
    } finally {
      removeTree(dir);
    }
  });

  it('listens on TCP (listenAddresses) too, with network "none", and `mountat probe --config` finds it there', async () => {
    const port = await freePort();
    const dir = scratchDir('mountat-runner-');
    // TCP only where actions have networks of their own: on the host's, they could connect (test/listeners.test.ts).
    const own = await startRunner({ network: 'none', grpcServers: [{ listenPaths: [join(dir, 'runner.sock')], listenAddresses: [`127.0.0.1:${port}`] }] }, dir);
    try {
      // A config naming only the address, ":port" as Buildbarn spells "every interface".
      const tcpOnly = join(dir, 'tcp-only.json');
      writeFileSync(tcpOnly, JSON.stringify({ buildDirectoryPath: own.build, network: 'none', grpcServers: [{ listenAddresses: [`:${port}`] }] }));
      const probe = mountat(['probe', '--config', tcpOnly]);
      expect([probe.status, probe.stdout, probe.stderr]).toEqual([0, `ready: localhost:${port}\n`, '']);
    } finally {
      await own.stop();
      removeTree(own.dir);
    }
    const closed = mountat(['probe', '--socket', own.socket, '--timeout', '1']);
    expect(closed.status).toBe(1);
  });

  it('refuses to start, in one line naming what it lacks, without the capabilities containment needs', () => {
    const cases = [
      { drop: 'setpcap', config: {}, line: "CAP_SETPCAP (to reduce each action's capabilities)" },
      { drop: 'sys_admin', config: {}, line: 'CAP_SYS_ADMIN (for the mounts, namespaces and pivot_root of every action)' },
      {
        drop: 'setuid,-setgid',
        config: { runCommandsAs: { userId: 1000, groupId: 1000 } },
        line: 'CAP_SETUID (for runCommandsAs), CAP_SETGID (for runCommandsAs)',
      },
      { drop: 'net_admin', config: { network: 'none' }, line: 'CAP_NET_ADMIN (to bring up loopback in each action\'s network namespace (network "none"))' },
    ];
    for (const { drop, config, line } of cases) {
      const dir = scratchDir('mountat-runner-');
      try {
        const socket = join(dir, 'runner.sock');
        const file = join(dir, 'config.json');
        mkdirSync(join(dir, 'build'));
        writeFileSync(
          file,
          JSON.stringify({ buildDirectoryPath: join(dir, 'build'), grpcServers: [{ listenPaths: [socket] }], stateDirectory: join(dir, 'state'), ...config }),
        );
        // Taken out of the bounding set, the capability is gone from the runner (root) after exec.
        const result = spawnSync('setpriv', [`--bounding-set=-${drop}`, '--', ...mountatArgv('runner', '--config', file)], {
          encoding: 'utf8',
        });
        expect(result.stderr).toBe(`mountat: the runner lacks ${line}; run it as root, or add ${line.includes(', CAP_') ? 'them' : 'it'} to its container\n`);
        expect(result.status).toBe(1);
        expect(existsSync(socket)).toBe(false);
      } finally {
        removeTree(dir);
      }
    }
  });

  it('runs java, which cannot start in a plain chroot, once /proc is there', async () => {
    const java = realpathSync('/usr/bin/java');
    const config = (withProc: boolean) => ({
      mounts: [...(withProc ? [{ target: 'proc', kind: 'proc' }] : []), { target: 'usr', kind: 'bind', source: '/usr', attributes: { readOnly: true } }],
    });
    for (const withProc of [false, true]) {
      const own = await startRunner(config(withProc));
      try {
        const root = join(own.build, 'j', 'root');
        mkdirSync(root, { recursive: true });
        mkdirSync(join(own.build, 'j', 'tmp'));
        for (const name of ['bin', 'lib', 'lib64']) symlinkSync(`usr/${name}`, join(root, name));
        const response = await run(own.client, requestFor('j', '', { arguments: [java, '-version'] }));
        const stderr = readFileSync(join(own.build, 'j', 'stderr'), 'utf8');
        if (withProc) {
          expect(response.exitCode).toBe('0');
          expect(stderr).toMatch(/^openjdk version "/);
        } else {
          expect(response.exitCode).toBe('127');
          expect(stderr).toMatch(/libjli\.so: cannot open shared object file/);
        }
        expect(mountsUnder(own.build)).toEqual([]);
      } finally {
        await own.stop();
        removeTree(own.dir);
      }
    }
  });

  it("removes at start-up what a SIGKILLed runner left, from its record, and leaves others' mounts alone", async () => {
    const table = mountTable();
    const own = await startRunner();
    makeAction(own.build, 'k');
    own.client.Run(requestFor('k', 'echo started; exec sleep 63.3'), () => {});
    try {
      expect(actionPlanMounts(await processWith('sleep 63.3'))).toHaveLength(defaultPlanMountCount());
    } finally {
      // Whatever the check found, the runner goes (stop() is idempotent).
      expect(await own.stop('SIGKILL')).toBe(null);
    }
    // The action dies with the runner (PR_SET_PDEATHSIG), and its mounts with its namespace: they
    // were never in this one. The directories made for them stay, named by the record, until the
    // next start.
    for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', 'sleep 63.3']).status === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(spawnSync('pgrep', ['-f', 'sleep 63.3']).status).toBe(1);
    expect(mountsUnder(own.build)).toEqual([]);
    expect(readdirSync(join(own.build, 'k', 'root')).sort()).toEqual(['bin', 'proc', 'sys', 'tmp', 'usr']);
    expect(readdirSync(join(own.dir, 'state')).sort()).toEqual(['action-k.json', 'runner.lock']);
    // And a mount no record knows of, where this runner never mounts (as an external hook or the
    // worker might leave): not the runner's to take (it took it before issue 14's sweep rule).
    mkdirSync(join(own.build, 'other'));
    execFileSync('mount', ['-t', 'tmpfs', 'left-by-someone', join(own.build, 'other')]);
    const again = await startRunner({}, own.dir);
    try {
      expect(mountsUnder(own.build)).toEqual([join(own.build, 'other')]);
      execFileSync('umount', [join(own.build, 'other')]);
      expect(mountTable()).toBe(table);
      // From the record: the mountpoint directories it created are gone too.
      expect(readdirSync(join(own.build, 'k', 'root')).sort()).toEqual(['bin', 'usr']);
      expect(readdirSync(join(own.dir, 'state'))).toEqual(['runner.lock']);
      expect(again.output()).toMatch(/tore down what an earlier runner left, from its record/);
      expect(again.output()).not.toMatch(/start-up sweep removed a mount/);
      expect(again.output()).toMatch(
        /"source":"left-by-someone"\}\],"msg":"start-up sweep left alone mounts below the build directory that this runner does not make"/,
      );
    } finally {
      await again.stop();
      removeTree(own.dir);
    }
  });
});
