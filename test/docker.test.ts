// The runner image (the repository's Dockerfile) in a real Docker engine, through testcontainers:
// started with only the capabilities docs/operations.md documents, a build directory bind-mounted from
// the host with the propagation it documents, Run sent from the host over the socket. The engine
// is the test's own (test/helpers/docker.ts); nothing is pulled (TESTCONTAINERS_RYUK_DISABLED).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageOf } from '../src/base/index.js';
import { capabilityMask, type CapabilityName } from '../src/linux/index.js';
import { loadRunnerProto } from '../src/runner/index.js';
import type { RunnerClient } from '../src/runner/generated/buildbarn/runner/Runner.js';
import { installAttacker } from './helpers/attacker.js';
import { parseJson } from './helpers/checked.js';
import { buildRunnerImage, startEngine, type Engine } from './helpers/docker.js';
import { mountTable, mountsUnder, procCoversHere, removeTree, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, run } from './helpers/runner.js';

// The capabilities docs/operations.md#container-image documents for the runner (no runCommandsAs): its
// own (SYS_CHROOT because Docker's default seccomp profile refuses pivot_root), and the ones its
// root actions keep.
type ShortName = CapabilityName extends `CAP_${infer Name}` ? Name : never;
const CAPABILITIES: ShortName[] = ['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID'];
const capabilityBits = (names: ShortName[]) => capabilityMask(names.map((name): CapabilityName => `CAP_${name}`));

let engine: Engine;
let image: string;
let tableBefore: string;

beforeAll(async () => {
  tableBefore = mountTable();
  engine = await startEngine();
  process.env.DOCKER_HOST = engine.host;
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  // The engine has no bridge network, where testcontainers would look for the host's address.
  process.env.TESTCONTAINERS_HOST_OVERRIDE = 'localhost';
  image = await buildRunnerImage(engine.docker);
}, 20 * 60_000);

afterAll(async () => {
  if (!engine) return;
  // Stopped by its pid: the engine's own mounts (overlays, its exec root) go with it.
  await engine.stop();
  const tableAfter = mountTable();
  // Its images are large: removed whenever nothing is mounted there, before the check below.
  if (mountsUnder(engine.dir).length === 0) removeTree(engine.dir);
  expect(tableAfter).toBe(tableBefore);
}, 120_000);

/** `docker run --rm` of the image with the given capabilities and command; status and output. */
async function runOnce(caps: string[], entrypoint: string, args: string[]): Promise<{ status: number; output: string }> {
  const flags = ['run', '--rm', '--cap-drop', 'ALL', ...caps.flatMap((cap) => ['--cap-add', cap]), '--entrypoint', entrypoint, image, ...args];
  try {
    return { status: 0, output: await engine.docker(flags) };
  } catch (error) {
    return { status: 1, output: messageOf(error) };
  }
}

/**
 * The worker's side: /worker with the build directory, a shared mount so that a mount made under
 * it later (bb_worker's FUSE mount) can propagate into the runner's container.
 */
function workerDirectory(): { worker: string; build: string } {
  const worker = scratchDir('mountat-worker-');
  const build = join(worker, 'build');
  mkdirSync(build);
  execFileSync('mount', ['--bind', worker, worker]);
  execFileSync('mount', ['--make-shared', worker]);
  return { worker, build };
}

/** A tmpfs mounted under the build directory from the host, as bb_worker's FUSE mount, with an input root. */
function mountLate(build: string, id: string): string {
  const late = join(build, 'late');
  mkdirSync(late);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'worker-late', late]);
  makeAction(late, id);
  return late;
}

/** Everything a log stream has given until now (testcontainers' logs() follows the container). */
function readStream(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    setTimeout(() => {
      stream.destroy();
      resolve(text);
    }, 500);
  });
}

function clientFor(worker: string): RunnerClient {
  return new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${join(worker, 'runner')}`, credentials.createInsecure());
}

/**
 * `mountat doctor` in the image as the runner starts there: through writable-cgroups, the entrypoint's first step
 * (its complaint, on stderr, in the same output).
 */
const doctorAsRunner = (caps: string[]) => runOnce(caps, 'sh', ['-c', 'exec writable-cgroups mountat doctor 2>&1']);

describe('the runner image', () => {
  it('passes `mountat doctor` with the documented capabilities, and names each one it lacks', async () => {
    const enough = await doctorAsRunner(CAPABILITIES);
    expect(enough.status).toBe(0);
    expect(enough.output).toContain('ok   CAP_SYS_ADMIN is effective');
    expect(enough.output).toContain('ok   a trial tmpfs can be created (fsopen, fsconfig, fsmount)');
    expect(enough.output).toContain('ok   pivot_root is refused (a seccomp profile): actions are chrooted into their root over this one instead');
    // Docker on this hybrid host mounts the v1 hierarchies only, read-only at the container's cgroup; made writable
    // by the entrypoint, the runner can make its actions' cgroups there.
    expect(enough.output).toContain('ok   cgroups: cgroup v1; controllers: pids v1, memory v1, cpu v1, io v1');
    expect(enough.output).toMatch(/^ok {3}the runner can make its actions' cgroups below \/sys\/fs\/cgroup\/pids, /m);
    expect(enough.output).toContain('ok   limits can be enforced: pids, memoryBytes, cpu');
    expect(enough.output).not.toMatch(/^(warn|fail) /m);

    const noAdmin = await doctorAsRunner(CAPABILITIES.filter((cap) => cap !== 'SYS_ADMIN'));
    expect(noAdmin.status).toBe(1);
    expect(noAdmin.output).toContain('fail CAP_SYS_ADMIN is not effective');
    // Without it the entrypoint cannot make the cgroup mounts writable either: it says so, and starts the command.
    expect(noAdmin.output).toMatch(/^warn the runner cannot make its actions' cgroups: .*EROFS/m);
    const entrypointAlone = await runOnce(
      CAPABILITIES.filter((cap) => cap !== 'SYS_ADMIN'),
      'sh',
      ['-c', 'exec writable-cgroups echo started 2>&1'],
    );
    expect(entrypointAlone.output).toMatch(/^writable-cgroups: read-only still: \/sys\/fs\/cgroup\/\S+ .*\nstarted\n$/);
    const noSetpcap = await doctorAsRunner(CAPABILITIES.filter((cap) => cap !== 'SETPCAP'));
    expect(noSetpcap.output).toContain('warn CAP_SETPCAP is not effective');
    const noChroot = await doctorAsRunner(CAPABILITIES.filter((cap) => cap !== 'SYS_CHROOT'));
    expect(noChroot.output).toContain('warn pivot_root is refused (a seccomp profile) and CAP_SYS_CHROOT is not effective');
    const runnerOnly = await doctorAsRunner(['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT']);
    expect(runnerOnly.output).toContain(
      'warn actions running as root will lack CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID',
    );
  });

  it('leaves the cgroup mounts read-only without the entrypoint: why writable-cgroups is there', async () => {
    const direct = await runOnce(CAPABILITIES, 'mountat', ['doctor']);
    expect(direct.status).toBe(0);
    expect(direct.output).toMatch(/^warn the runner cannot make its actions' cgroups: .*EROFS.* — the cgroup file system is mounted read-only here/m);
    expect(direct.output).toMatch(/^warn limits that cannot be enforced here: pids \(/m);
  });

  it('declares its entrypoint and a HEALTHCHECK through `mountat probe`', async () => {
    const config = parseJson<{ Entrypoint: string[]; Healthcheck: { Test: string[] } }>(
      await engine.docker(['image', 'inspect', '--format', '{{json .Config}}', image]),
    );
    expect(config.Entrypoint).toEqual(['tini', '--', 'writable-cgroups', 'mountat', 'runner', '--config', '/config/runner.json']);
    expect(config.Healthcheck.Test).toEqual(['CMD', 'mountat', 'probe', '--config', '/config/runner.json', '--timeout', '4']);
  });

  it("serves Run from the host with only the documented capabilities: /proc and /sys work in the contained action, the worker's later mount reaches it, nothing stays mounted", async () => {
    const { GenericContainer, Wait } = await import('testcontainers');
    const healthcheck = parseJson<['CMD', ...string[]]>(await engine.docker(['image', 'inspect', '--format', '{{json .Config.Healthcheck.Test}}', image]));

    const { worker, build } = workerDirectory();
    makeAction(build, 'a1');
    const buildFsType = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', build], { encoding: 'utf8' }).trim();
    let client: RunnerClient | undefined;
    try {
      const container = await new GenericContainer(image)
        .withDroppedCapabilities('ALL')
        .withAddedCapabilities(...CAPABILITIES)
        // testcontainers joins source:target:mode; Docker takes "rw,rslave" as the mode.
        // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- a mode testcontainers' type does not list
        .withBindMounts([{ source: worker, target: '/worker', mode: 'rw,rslave' as 'rw' }])
        // The image's own HEALTHCHECK command, polled every second instead of every 10 s.
        .withHealthCheck({ test: healthcheck, interval: 1000, timeout: 5000, retries: 30, startPeriod: 1000 })
        .withWaitStrategy(Wait.forHealthCheck())
        .withStartupTimeout(90_000)
        .start();

      // Mounted on the host after the runner started, as bb_worker's FUSE mount would be.
      const late = mountLate(build, 'a2');
      client = clientFor(worker);
      const script = [
        'readlink /proc/self/exe',
        // mount point and file system type (the field after the "-", as optional fields come before it)
        // (sorted: mountinfo lists mounts by id, and what the runner made ahead has the lower ids)
        'sed -E "s/^([^ ]+ ){4}([^ ]+) .* - ([^ ]+) .*/\\2 \\3/" /proc/self/mountinfo | grep -E "^/(proc|sys|tmp) " | sort | tr "\\n" ","; echo',
        // the hardened proc's covers (the default), by mount point
        'cut -d" " -f5 /proc/self/mountinfo | grep "^/proc/" | sort | tr "\\n" " "; echo',
        'ls /sys/class | grep -c .',
        'echo "pids: $(ls /proc | grep "^[0-9]" | sort -n | tr "\\n" " ")"',
        'echo "caps: $(grep ^CapEff /proc/self/status | cut -f2) no_new_privs: $(grep ^NoNewPrivs /proc/self/status | cut -f2)"',
      ].join('; ');
      for (const id of ['a1', 'late/a2']) {
        const response = await run(client, requestFor(id, script));
        const stdout = readFileSync(join(build, id, 'stdout'), 'utf8');
        expect({ exitCode: Number(response.exitCode), stderr: readFileSync(join(build, id, 'stderr'), 'utf8') }).toEqual({ exitCode: 0, stderr: '' });
        const [exe, mounts, covers, classes, pids, caps] = stdout.trim().split('\n');
        expect(exe).toBe('/bin/busybox');
        // /tmp is the request's temporary directory bound in: of the file system it lives on.
        expect(mounts).toBe(`/proc proc,/sys sysfs,/tmp ${id === 'a1' ? buildFsType : 'tmpfs'},`);
        // The same kernel as this test's: the same names to cover.
        expect(covers?.trim()).toBe(
          procCoversHere()
            .map((name) => `/proc/${name}`)
            .sort()
            .join(' '),
        );
        expect(Number(classes)).toBeGreaterThan(5);
        // Its own PID namespace: the init (1) and the action (2), then the pipeline's processes.
        expect(pids).toMatch(/^pids: 1 2( \d+)* ?$/);
        // Contained in the container as on a host: the default set, NO_NEW_PRIVS.
        expect(caps).toBe('caps: 00000000000001fb no_new_privs: 1');
      }

      // Docker's default seccomp profile refuses pivot_root: the runner said so and chroots instead,
      // and an action still cannot reach the container's files (its /etc/hostname) beneath its root.
      expect((await readStream(await container.logs())).includes('"root":"chroot","msg":"pivot_root is refused here')).toBe(true);
      makeAction(build, 'a3');
      installAttacker(join(build, 'a3', 'root'));
      await run(client, requestFor('a3', 'attacker chroot-escape /etc/hostname; attacker userns-escape /etc/hostname; attacker fds'));
      expect(readFileSync(join(build, 'a3', 'stdout'), 'utf8')).toBe(
        'blocked: chroot: EPERM\nblocked: unshare user+mount namespace: EPERM\nblocked: no fd but 0, 1, 2\n',
      );

      // Inside the container, after the actions: only the worker's own mount below /worker/build.
      const inside = await container.exec(['cat', '/proc/self/mountinfo']);
      const below = inside.output
        .split('\n')
        .map((line) => line.split(' ')[4])
        .filter((point) => point?.startsWith('/worker/build/'));
      expect(below).toEqual(['/worker/build/late']);
      const status = await container.exec(['grep', 'CapEff', '/proc/1/status']);
      expect(BigInt(`0x${status.output.split(/\s+/)[1]}`)).toBe(capabilityBits(CAPABILITIES));

      const stopped = await container.stop({ timeout: 20_000, remove: false });
      const state = parseJson<{ ExitCode: number; OOMKilled: boolean }>(await engine.docker(['inspect', '--format', '{{json .State}}', stopped.getId()]));
      // SIGTERM reached the runner through tini, and it shut down cleanly.
      expect(state.ExitCode).toBe(0);
      await engine.docker(['rm', stopped.getId()]);

      // On the host: the worker's two mounts, nothing of the runner's.
      expect(mountsUnder(worker)).toEqual([worker, late]);
      execFileSync('umount', [late]);
    } finally {
      client?.close();
      execFileSync('umount', ['--recursive', '--lazy', worker]);
    }
    expect(mountsUnder(worker)).toEqual([]);
    removeTree(worker);
  }, 180_000);

  it('does not see a mount the worker makes later without rslave: why the propagation is documented', async () => {
    const { GenericContainer, Wait } = await import('testcontainers');
    const { worker, build } = workerDirectory();
    let client: RunnerClient | undefined;
    try {
      // Docker's default for a bind: rprivate.
      const container = await new GenericContainer(image)
        .withDroppedCapabilities('ALL')
        .withAddedCapabilities(...CAPABILITIES)
        .withBindMounts([{ source: worker, target: '/worker', mode: 'rw' }])
        .withWaitStrategy(Wait.forLogMessage('runner ready'))
        .start();
      const late = mountLate(build, 'a3');
      client = clientFor(worker);
      // The runner sees the empty directory under the worker's mount, so the input root is missing.
      await expect(run(client, requestFor('late/a3', 'true'))).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: expect.stringContaining('late/a3/root') as unknown,
      });
      await container.stop({ timeout: 20_000 });
      execFileSync('umount', [late]);
    } finally {
      client?.close();
      execFileSync('umount', ['--recursive', '--lazy', worker]);
    }
    removeTree(worker);
  }, 120_000);
});
