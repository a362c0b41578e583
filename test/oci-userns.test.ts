// The hooks in a user-namespaced container (issue 21): runc and crun with uidMappings and
// gidMappings in config.json (0 → 100000, 65536 ids), the rootfs owned by the mapped root, with
// and without a network namespace of the container's own; then podman with --uidmap.
//
// runc and crun run createContainer hooks inside the container's user namespace, as its root: an
// unprivileged uid on the host, which the host's state directory (root's, 0700) shuts out. There
// the hook works with a state directory that uid owns, and otherwise fails in one line naming the
// fix. At createRuntime the hook enters the container's namespaces through nsenter but stays the
// host's root: it works with the host's state directory, and it is what podman's hooks.d needs,
// where every container may have a map of its own. Either way the container sees a proc of its
// own PIDs, a read-only sysfs of its own network namespace (or, sharing the host's, the host's
// /sys), a writable /tmp, and an uid_map that is not the identity; afterwards nothing is left.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readJson } from './helpers/checked.js';
import {
  bundlesRemovedAfterEach,
  HOOK,
  listing,
  removeBundle,
  runContainer,
  RUNTIMES,
  setHooks,
  USERNS_HOST_ID,
  type Bundle,
  type Runtime,
} from './helpers/oci.js';
import { credentials } from '@grpc/grpc-js';
import { loadRunnerProto } from '../src/runner/index.js';
import { installAttacker } from './helpers/attacker.js';
import { startPodman, type Podman } from './helpers/podman.js';
import { busyboxRoot, mountTable, removeTree, repo } from './helpers/roots.js';
import { requestFor, run as runAction } from './helpers/runner.js';
import { chownToContainer, makeUserlandBundle, startContainer, type UserlandBundle } from './helpers/userland-bundle.js';

const PROBE = [
  'echo "uid_map: $(tr -s " " < /proc/self/uid_map | sed "s/^ //")"',
  'echo "pids: $(ls /proc | grep "^[0-9]" | tr "\\n" " ")"',
  // Mount point and file system type (after the "-" that ends the optional fields).
  `echo "mounts: $(awk '$5 ~ /^\\/(proc|sys|tmp)$/ { i = 7; while ($i != "-") i++; printf "%s %s,", $5, $(i + 1) }' /proc/self/mountinfo)"`,
  'echo "sys: $(touch /sys/probe 2>&1 | sed "s/.*: //")"',
  'echo "net: $(ls /sys/class/net | tr "\\n" " ")"',
  'echo "tmp: $(echo written > /tmp/file && cat /tmp/file)"',
].join('; ');

/** What the probe printed, one `key: value` line each. */
function report(stdout: string): Record<string, string> {
  const lines = stdout.split('\n').filter((line) => line.includes(': '));
  return Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2).trim()]));
}

/** The network devices the host's sysfs shows (this test shares the host's network namespace). */
const hostNetDevices = () => readdirSync('/sys/class/net').sort().join(' ');

/**
 * `tmp`: the file system at /tmp, a tmpfs unless the runner bound the action's temporary directory there;
 * `uidMap`: the user namespace's, if not the container's.
 */
function expectContainerMounts(stdout: string, ownNetwork: boolean, tmp = 'tmpfs', uidMap = `0 ${USERNS_HOST_ID} 65536`): void {
  const seen = report(stdout);
  expect(seen.uid_map, stdout).toBe(uidMap);
  // Its own PID namespace: pid 1 is its first process, and only the few commands of the probe besides (the host has hundreds, with large PIDs).
  const pids = seen.pids!.split(' ').map(Number);
  expect(pids[0], stdout).toBe(1);
  expect(pids.length, stdout).toBeLessThanOrEqual(10);
  expect(Math.max(...pids), stdout).toBeLessThan(50);
  expect(seen.mounts, stdout).toBe(`/proc proc,/sys sysfs,/tmp ${tmp},`);
  expect(seen.sys, stdout).toBe('Read-only file system');
  // A sysfs of the container's own network namespace shows its lo alone; sharing the host's, the host's devices.
  expect(seen.net, stdout).toBe(ownNetwork ? 'lo' : hostNetDevices());
  expect(seen.tmp, stdout).toBe('written');
}

const bundleWith = bundlesRemovedAfterEach();
const usernsBundle = (network: boolean, args = ['/bin/sh', '-c', PROBE]): Bundle => bundleWith({ args, userNamespace: { network } });

const ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
const hook = (bundle: Bundle, stage: string) => ({ args: ['mountat-hook', stage, '--state-dir', bundle.stateDir], env: ENV });

/** The state directory as the host has it: root's, mode 0700 (what the hook itself makes). */
function hostStateDir(bundle: Bundle): void {
  mkdirSync(bundle.stateDir, { mode: 0o700 });
}

const NETWORKS: Array<[string, boolean]> = [
  ['its own network namespace', true],
  ["the runtime's network namespace", false],
];

/** A container that ran, saw its mounts, and left the mount tables, the bundle and the state directory as they were. */
function expectCleanRun(run: ReturnType<typeof runContainer>, network: boolean, bundle: Bundle, before: ReturnType<typeof listing>, testTable: string): void {
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expectContainerMounts(run.stdout, network);
  expect(run.tableAfter).toBe(run.tableBefore);
  expect(mountTable()).toBe(testTable);
  expect(listing(bundle.dir)).toEqual(before);
  expect(readdirSync(bundle.stateDir)).toEqual([]);
}

describe.each(RUNTIMES)('%s with uidMappings and gidMappings', (runtime) => {
  it.each(NETWORKS)("createRuntime, as the host's root, with the host's state directory (%s)", (_name, network) => {
    const testTable = mountTable();
    const bundle = usernsBundle(network);
    hostStateDir(bundle);
    setHooks(bundle, { createRuntime: [hook(bundle, 'createRuntime')], poststop: [hook(bundle, 'poststop')] });
    const before = listing(bundle.dir);
    expectCleanRun(runContainer(runtime, bundle, `userns-rt-${runtime}`), network, bundle, before, testTable);
  });

  it.each(NETWORKS)("createContainer, as the container's root, with a state directory that root owns (%s)", (_name, network) => {
    const testTable = mountTable();
    const bundle = usernsBundle(network);
    hostStateDir(bundle);
    chownSync(bundle.stateDir, USERNS_HOST_ID, USERNS_HOST_ID);
    setHooks(bundle, { createContainer: [hook(bundle, 'createContainer')], poststop: [hook(bundle, 'poststop')] });
    const before = listing(bundle.dir);
    expectCleanRun(runContainer(runtime, bundle, `userns-cc-${runtime}`), network, bundle, before, testTable);
  });

  it("createContainer with the host's state directory: one line naming the fix, nothing mounted", () => {
    const bundle = usernsBundle(true, ['/bin/true']);
    hostStateDir(bundle);
    const hookErr = `${bundle.dir}-hook.err`;
    // crun shows hook output only where this annotation points.
    setHooks(bundle, { createContainer: [hook(bundle, 'createContainer')], poststop: [hook(bundle, 'poststop')] }, { 'run.oci.hooks.stderr': hookErr });
    const before = listing(bundle.dir);
    let run;
    let hookStderr = '';
    try {
      run = runContainer(runtime, bundle, `userns-refused-${runtime}`);
      if (runtime === 'crun') hookStderr = readFileSync(hookErr, 'utf8');
    } finally {
      rmSync(hookErr, { force: true });
    }
    expect(run.status).not.toBe(0);
    const line =
      `mountat-hook: cannot read the record ${bundle.stateDir}/oci-userns-refused-${runtime}.json: EACCES: permission denied, ` +
      `open '${bundle.stateDir}/oci-userns-refused-${runtime}.json' (the hook runs as root of the container's user namespace, ` +
      `uid map 0 ${USERNS_HOST_ID} 65536, which the state directory shuts out: run it at createRuntime instead, or give it a --state-dir that uid owns)`;
    if (runtime === 'runc') expect(run.stderr.replace(/\\"/g, '"')).toContain(`${line}\\n`);
    else expect(hookStderr).toBe(`${line}\n`);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(listing(bundle.dir)).toEqual(before);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });
});

describe('podman --uidmap with the hooks.d files, the mounting one at createRuntime', () => {
  let podman: Podman | undefined;
  let hooksDir: string;
  let stateDir: string;
  const annotations = ['--annotation', '"org.mountat.mounts=proc,sys,tmp"'];
  const userns = ['--uidmap', `0:${USERNS_HOST_ID}:65536`, '--gidmap', `0:${USERNS_HOST_ID}:65536`];

  beforeAll(async () => {
    expect(existsSync(HOOK), 'npm run build first').toBe(true);
    podman = await startPodman({ driver: 'vfs' });
    hooksDir = join(podman.dir, 'hooks.d');
    stateDir = join(podman.dir, 'state');
    // As docs/hooks.md tells an operator for user-namespaced containers: the shipped files, with
    // mountat.json's stage createRuntime instead of createContainer (and this test's state directory).
    for (const name of readdirSync(join(repo, 'hooks', 'hooks.d')).filter((file) => file.endsWith('.json'))) {
      const file = readJson<{ hook: { path: string; args: string[] }; stages: string[] }>(join(repo, 'hooks', 'hooks.d', name));
      file.hook.path = HOOK;
      const at = file.hook.args.indexOf('--state-dir');
      if (at >= 0) file.hook.args[at + 1] = stateDir;
      if (file.stages[0] === 'createContainer') {
        file.stages = ['createRuntime'];
        file.hook.args[1] = 'createRuntime';
      }
      writeFileSync(join(hooksDir, name), JSON.stringify(file, null, 2));
    }
  }, 60_000);

  afterAll(() => {
    if (!podman) return;
    spawnSync('podman', ['rm', '--all', '--force'], { encoding: 'utf8', env: { ...process.env, ...podman.env() } });
    podman.remove();
  });

  /** podman run with the table around it, in crun's case in the cgroup2 workaround's namespace (as test/podman.test.ts does). */
  function podmanRun(runtime: Runtime, args: string[]) {
    const snapshot = 'cat /proc/self/mountinfo > "$T.before"; podman "$@"; rc=$?; cat /proc/self/mountinfo > "$T.after"; exit $rc';
    const command =
      runtime === 'crun' ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount /sys/fs/cgroup/unified && ${snapshot}`] : ['sh', '-c', snapshot];
    const tables = join(podman!.dir, `tables-${runtime}`);
    const result = spawnSync(command[0]!, [...command.slice(1), 'sh', ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, ...podman!.env(runtime), T: tables },
    });
    const [before, after] = ['before', 'after'].map((end) => readFileSync(`${tables}.${end}`, 'utf8'));
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, before, after };
  }

  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) removeTree(root);
  });

  /** A busybox root owned by the mapped root, with the /etc podman binds its files into (made by the container's root). */
  function mappedRoot(): string {
    const root = busyboxRoot();
    roots.push(root);
    mkdirSync(join(root, 'etc'));
    execFileSync('chown', ['-R', `${USERNS_HOST_ID}:${USERNS_HOST_ID}`, root]);
    return root;
  }

  it.each(RUNTIMES)('%s: proc, sys and tmp of the hook in a container with its own user namespace; nothing left', (runtime) => {
    const root = mappedRoot();
    const before = listing(root);
    const run = podmanRun(runtime, [
      'run',
      '--rm',
      '--runtime',
      runtime,
      '--network',
      'none',
      ...userns,
      '--hooks-dir',
      hooksDir,
      ...annotations,
      '--rootfs',
      root,
      '/bin/sh',
      '-c',
      PROBE,
    ]);
    expect(run.status, run.stderr).toBe(0);
    // --network none: a network namespace of the container's own, with lo alone.
    expectContainerMounts(run.stdout, true);
    expect(readdirSync(stateDir)).toEqual([]);
    // podman's own mountpoints and files (dev, etc, proc, run, sys) stay, as after any podman run; mountat's tmp went.
    expect(listing(root).filter((path) => !before.includes(path) && !/^(dev|etc|proc|run|sys)(\/|$)/.test(path))).toEqual([]);
    expect(listing(root)).not.toContain('tmp/');
    expect(run.after).toBe(run.before);
  });
});

// mountat itself in such a container: `mountat exec` and the runner, run by the container's root,
// whose capabilities hold in its user namespace only (uid 0 there is USERNS_HOST_ID on the host).
describe.each(RUNTIMES)('mountat in a %s container with uidMappings', (runtime) => {
  const userlands: UserlandBundle[] = [];
  afterEach(() => {
    for (const bundle of userlands.splice(0)) removeBundle(bundle);
  });

  /** A busybox action root with the attacker, under the container's /scratch, and a file beside it to steal. */
  function actionRoot(bundle: UserlandBundle, at: string, mapped = true): void {
    const root = join(bundle.scratch, at);
    mkdirSync(root, { recursive: true });
    execFileSync(join(repo, 'scripts', 'make-busybox-root.sh'), [root]);
    installAttacker(root);
    writeFileSync(join(bundle.scratch, 'secret'), "the container's secret\n");
    chownToContainer(bundle.scratch, mapped);
  }

  // As the action: what it sees, then attacks that climb out of its root, make a user namespace
  // with all capabilities, and make /sys writable again. `secret` is beside the action's root in the container.
  const ATTACKS = ['attacker chroot-escape /scratch/secret', 'attacker userns-escape /scratch/secret', 'attacker remount-sys'];
  // /sys/firmware: the cover of a hardened sysfs; on a bind of the container's /sys, on top of the runtime's own mask there.
  const FIRMWARE = 'echo "firmware: $(ls /sys/firmware | wc -l) entries, $(grep -c " /sys/firmware " /proc/self/mountinfo) mounts"';
  const actionScript = [PROBE, FIRMWARE, ...ATTACKS, 'grep -E "^(CapEff|NoNewPrivs)" /proc/self/status'].join('; ');

  /** `runtimeMask`: whether the /sys bound for a sysfs carries the runtime's mask of /sys/firmware (the cover goes on top). */
  function expectContained(stdout: string, ownNetwork: boolean, options: { tmp?: string; uidMap?: string; runtimeMask?: boolean } = {}): void {
    expectContainerMounts(stdout, ownNetwork, options.tmp, options.uidMap);
    expect(report(stdout).firmware, stdout).toBe((options.runtimeMask ?? !ownNetwork) ? '0 entries, 2 mounts' : '0 entries, 1 mounts');
    expect(stdout.split('\n').filter((line) => line.startsWith('blocked: ') || line.startsWith('ESCAPED'))).toEqual([
      'blocked: chroot: EPERM',
      'blocked: unshare user+mount namespace: EPERM',
      'blocked: remount /sys: EPERM',
    ]);
    expect(stdout).toMatch(/^NoNewPrivs:\t1$/m);
    // The default capabilities of an action (CHOWN … SETPCAP), none of the runner's SYS_ADMIN or SYS_CHROOT.
    expect(stdout).toMatch(/^CapEff:\t00000000000001fb$/m);
  }

  it.each(NETWORKS)('mountat exec contains a command: proc, sys, tmp, the attacks blocked, nothing left (%s)', (_name, network) => {
    const bundle = makeUserlandBundle({
      network,
      args: [
        '/usr/bin/node',
        join(repo, 'bin', 'mountat.js'),
        'exec',
        '--root',
        '/scratch/action',
        '--state-dir',
        '/scratch/state',
        '--',
        '/bin/sh',
        '-c',
        actionScript,
      ],
    });
    userlands.push(bundle);
    actionRoot(bundle, 'action');
    const before = listing(join(bundle.scratch, 'action'));
    const run = runContainer(runtime, bundle, `userland-exec-${runtime}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectContained(run.stdout, network);
    expect(listing(join(bundle.scratch, 'action'))).toEqual(before);
    expect(readdirSync(join(bundle.scratch, 'state'))).toEqual([]);
    expect(run.tableAfter).toBe(run.tableBefore);
  });

  // A user namespace made inside a container of the host's: runc's masks over /proc, made by the
  // host's root, are locked there, and the kernel then refuses a new proc (mount_too_revealing).
  // With a PID namespace of its own too: proc is refused for a PID namespace another user namespace owns.
  it.each([
    ['masked', true],
    ['unmasked', false],
  ])("mountat exec in a user namespace made inside a container of the host's, its /proc %s", (_name, runtimeMasks) => {
    const exec = [join(repo, 'bin', 'mountat.js'), 'exec', '--root', '/scratch/action', '--state-dir', '/scratch/state', '--', '/bin/sh', '-c', actionScript];
    const bundle = makeUserlandBundle({
      network: true,
      mapped: false,
      runtimeMasks,
      args: ['unshare', '--user', '--map-root-user', '--mount', '--pid', '--fork', '--', '/usr/bin/node', ...exec],
    });
    userlands.push(bundle);
    actionRoot(bundle, 'action', false);
    const before = listing(join(bundle.scratch, 'action'));
    const run = runContainer(runtime, bundle, `userland-nested-${runtime}`);
    if (runtimeMasks) {
      expect(run.status).not.toBe(0);
      expect(run.stderr).toBe(
        'mountat: mount proc on `proc`: proc is refused in this user namespace: masks over /proc made outside it leave no fully visible proc here; ' +
          'run it with an unmasked /proc (podman --security-opt unmask=ALL, Kubernetes securityContext.procMount: Unmasked)\n',
      );
    } else {
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      // The container's network namespace is the host's user namespace's: the sysfs is its /sys, bound.
      expectContained(run.stdout, true, { uidMap: '0 0 1', runtimeMask: false });
    }
    expect(listing(join(bundle.scratch, 'action'))).toEqual(before);
    expect(existsSync(join(bundle.scratch, 'state')) ? readdirSync(join(bundle.scratch, 'state')) : []).toEqual([]);
    expect(run.tableAfter).toBe(run.tableBefore);
  });

  it('the runner answers a Run on a socket in a bound directory: the action contained, nothing left', async () => {
    const bundle = makeUserlandBundle({
      network: true,
      args: ['/usr/bin/node', join(repo, 'bin', 'mountat.js'), 'runner', '--config', '/scratch/runner.json'],
    });
    userlands.push(bundle);
    actionRoot(bundle, 'build/a1/root');
    mkdirSync(join(bundle.scratch, 'build', 'a1', 'tmp'));
    writeFileSync(
      join(bundle.scratch, 'runner.json'),
      JSON.stringify({ buildDirectoryPath: '/scratch/build', grpcServers: [{ listenPaths: ['/scratch/runner.sock'] }], stateDirectory: '/scratch/state' }),
    );
    chownToContainer(bundle.scratch);
    const before = listing(join(bundle.scratch, 'build', 'a1', 'root'));
    const container = startContainer(runtime, bundle, `userland-runner-${runtime}`);
    const socket = join(bundle.scratch, 'runner.sock');
    let response;
    try {
      for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      const client = new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${socket}`, credentials.createInsecure());
      try {
        response = await runAction(client, requestFor('a1', actionScript));
      } finally {
        client.close();
      }
    } finally {
      container.stop();
    }
    const run = await container.ended;
    expect(run.status, run.stderr).toBe(0);
    expect(response.exitCode).toBe('0');
    // The runner binds the action's temporary directory at /tmp: what the action wrote there is in it.
    const scratchFs = execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '--target', bundle.scratch], { encoding: 'utf8' }).trim();
    expectContained(readFileSync(join(bundle.scratch, 'build', 'a1', 'stdout'), 'utf8'), true, { tmp: scratchFs });
    expect(readFileSync(join(bundle.scratch, 'build', 'a1', 'tmp', 'file'), 'utf8')).toBe('written\n');
    // The one warning of a runner without a writable cgroup file system, then ready, stopping, stopped.
    expect(run.stdout).toMatch(/"runner ready"/);
    expect(listing(join(bundle.scratch, 'build', 'a1', 'root'))).toEqual(before);
    // The runner's lock stays; no record of the action does.
    expect(readdirSync(join(bundle.scratch, 'state'))).toEqual(['runner.lock']);
    expect(run.tableAfter).toBe(run.tableBefore);
  });
});
