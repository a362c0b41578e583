// mountat-hook through the hook server (`mountat hook-server`), under the real runc and crun:
// the same mounts, lines and records as the hook's own node process, with no node started per
// hook; and the launcher's fallback to node where the server is absent or refuses the peer.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, constants as fsConstants, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOOK,
  listing,
  bundlesRemovedAfterEach,
  USERNS_HOST_ID,
  runContainer,
  RUNTIMES,
  setHooks,
  standardHooks,
  type Bundle,
  type HookSpec,
} from './helpers/oci.js';
import { mountTable, repo, scratchDir } from './helpers/roots.js';

const PROBE = [
  'readlink /proc/self/exe',
  'echo "pids: $(ls /proc | grep -c "^[0-9]")"',
  'mkdir /sys/x 2>&1 | sed "s/.*: //"',
  'echo written > /tmp/file && cat /tmp/file',
].join('; ');

interface Server {
  process: ChildProcess;
  socket: string;
  stderr: () => string;
}

async function startServer(socket: string): Promise<Server> {
  const child = spawn(process.execPath, [join(repo, 'bin', 'mountat.js'), 'hook-server', '--socket', socket, '--workers', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('serving')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`hook-server exited ${code}: ${stderr}`)));
  });
  return { process: child, socket, stderr: () => stderr };
}

async function stopServer(server: Server): Promise<number | null> {
  if (server.process.exitCode !== null || server.process.signalCode !== null) return server.process.exitCode;
  const exited = new Promise<number | null>((resolve) => server.process.once('exit', (code) => resolve(code)));
  server.process.kill('SIGTERM');
  return exited;
}

/**
 * A copy of the launcher with no dist/hook.cjs beside it: its fallback (node on that script)
 * cannot work, so a hook of this copy that succeeds was run by the server.
 */
function serverOnlyLauncher(): string {
  const dir = scratchDir('mountat-launcher-');
  mkdirSync(join(dir, 'hooks'));
  mkdirSync(join(dir, 'dist'));
  copyFileSync(HOOK, join(dir, 'hooks', 'mountat-hook'));
  return join(dir, 'hooks', 'mountat-hook');
}

let server: Server;
let launcher: string;
const socketDir = scratchDir('mountat-hook-sock-');
const socket = join(socketDir, 'hook.sock');

beforeAll(async () => {
  server = await startServer(socket);
  launcher = serverOnlyLauncher();
});
afterAll(async () => {
  await stopServer(server);
  spawnSync('rm', ['-rf', socketDir, join(launcher, '..', '..')]);
});

const bundleWith = bundlesRemovedAfterEach();

/** The standard entries, through `path` and the test's server. */
function hooksThrough(bundle: Bundle, path: string, stage: 'createContainer' | 'createRuntime' | 'prestart' = 'createContainer'): Record<string, HookSpec[]> {
  const standard = standardHooks(bundle, ['--hook-socket', socket])!;
  const mount = standard.createContainer![0]!;
  return {
    [stage]: [{ ...mount, path, args: ['mountat-hook', stage, ...mount.args.slice(2)] }],
    poststop: [{ ...standard.poststop![0]!, path }],
  };
}

describe.each(RUNTIMES)('%s with mountat-hook through the hook server', (runtime) => {
  it.each(['createContainer', 'createRuntime', 'prestart'] as const)('mounts at %s with no node of its own, and poststop removes the record', (stage) => {
    const testTable = mountTable();
    const logged = server.stderr();
    const bundle = bundleWith({ args: ['/bin/sh', '-c', PROBE] });
    setHooks(bundle, hooksThrough(bundle, launcher, stage));
    const before = listing(bundle.dir);
    const run = runContainer(runtime, bundle, `srv-${stage}-${runtime}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('/bin/busybox');
    // The container's own PIDs: proc was made for its PID namespace, not the server's.
    expect(Number(lines[1]?.replace('pids: ', ''))).toBeLessThanOrEqual(4);
    expect(lines.slice(2)).toEqual(['Read-only file system', 'written']);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(mountTable()).toBe(testTable);
    expect(listing(bundle.dir)).toEqual(before);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
    expect(server.stderr()).toBe(logged);
  });

  it("fails the container on a bad annotation with the hook's own line, mounting nothing", () => {
    const bundle = bundleWith({ args: ['/bin/true'], annotations: { 'org.mountat.tmp.size': 'lots' } });
    const hookErr = join(bundle.dir, '..', `${bundle.dir.split('/').pop()}-hook.err`);
    setHooks(bundle, hooksThrough(bundle, launcher), { 'run.oci.hooks.stderr': hookErr });
    const before = listing(bundle.dir);
    const run = runContainer(runtime, bundle, `srv-bad-${runtime}`);
    expect(run.status).not.toBe(0);
    const message = 'mountat-hook: annotation org.mountat.tmp.size="lots": expected a value like "64m"';
    if (runtime === 'runc') expect(run.stderr.replace(/\\"/g, '"')).toContain(`${message}\\n`);
    else expect(spawnSync('cat', [hookErr], { encoding: 'utf8' }).stdout).toBe(`${message}\n`);
    spawnSync('rm', ['-f', hookErr]);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(listing(bundle.dir)).toEqual(before);
  });
});

describe.each(RUNTIMES)('%s with a user namespace of its own (uid 0 mapped to 100000)', (runtime) => {
  const USERNS_PROBE = ['tr -s " " < /proc/self/uid_map', 'echo "pids: $(ls /proc | grep -c "^[0-9]")"', 'echo written > /tmp/file && cat /tmp/file'].join(
    '; ',
  );
  const expectInside = (stdout: string) => {
    const lines = stdout.trim().split('\n');
    expect(lines[0]?.trim()).toBe(`0 ${USERNS_HOST_ID} 65536`);
    expect(Number(lines[1]?.replace('pids: ', ''))).toBeLessThanOrEqual(4);
    expect(lines[2]).toBe('written');
  };

  it("createRuntime through the server, as the host's root", () => {
    const bundle = bundleWith({ args: ['/bin/sh', '-c', USERNS_PROBE], userNamespace: { network: true } });
    mkdirSync(bundle.stateDir, { mode: 0o700 });
    setHooks(bundle, hooksThrough(bundle, launcher, 'createRuntime'));
    const run = runContainer(runtime, bundle, `srv-userns-rt-${runtime}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectInside(run.stdout);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });

  // The container's root is uid 100000 on the host: the socket's 0700 directory keeps it out
  // (connect: EACCES) before the server's own check could, and the launcher runs node.
  it("createContainer, as the container's root: kept out, run by the hook's own node", () => {
    const bundle = bundleWith({ args: ['/bin/sh', '-c', USERNS_PROBE], userNamespace: { network: true } });
    mkdirSync(bundle.stateDir, { mode: 0o700 });
    chownSync(bundle.stateDir, USERNS_HOST_ID, USERNS_HOST_ID);
    setHooks(bundle, hooksThrough(bundle, HOOK));
    const run = runContainer(runtime, bundle, `srv-userns-cc-${runtime}`);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectInside(run.stdout);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });
});

describe('the launcher without the server', () => {
  it('runs node itself when the socket is absent, and the container gets its mounts', () => {
    const bundle = bundleWith({ args: ['/bin/sh', '-c', PROBE] });
    const hooks = standardHooks(bundle, ['--hook-socket', join(socketDir, 'absent.sock')])!;
    setHooks(bundle, hooks);
    const run = runContainer('runc', bundle, 'srv-absent');
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n').slice(0, 1)).toEqual(['/bin/busybox']);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });

  it('the server-only copy fails where there is no server (so its successes above were the server)', () => {
    const run = spawnSync(launcher, ['poststop', '--hook-socket', join(socketDir, 'absent.sock')], { input: '{}', encoding: 'utf8' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('hook.cjs');
  });
});

describe('peers the server refuses run the hook themselves', () => {
  const unknownStage = 'mountat-hook: unknown stage "bogus" (one of prestart, createRuntime, createContainer, startContainer, poststart, poststop)\n';
  const peers: Array<[string, string[], RegExp]> = [
    // Given CAP_DAC_OVERRIDE, so that the 0700 directory does not stop it before the server sees it.
    [
      'a uid that is not 0',
      ['setpriv', '--reuid', '65534', '--inh-caps', '+dac_override', '--ambient-caps', '+dac_override', '--'],
      /refused a peer: uid 65534 /,
    ],
    ['root without CAP_SYS_ADMIN', ['setpriv', '--bounding-set', '-sys_admin', '--'], /refused a peer: pid \d+ lacks CAP_SYS_ADMIN/],
    [
      "root of a user namespace mapped to the host's root",
      ['unshare', '--user', '--map-user=0', '--map-group=0', '--'],
      /refused a peer: pid \d+ is in another user namespace/,
    ],
  ];
  it.each(peers)('%s: refused, and the launcher falls back to node', async (_name, wrapper, logged) => {
    const before = server.stderr();
    const run = spawnSync(wrapper[0]!, [...wrapper.slice(1), HOOK, 'bogus', '--hook-socket', socket], { input: '{}', encoding: 'utf8' });
    expect(run.stderr).toBe(unknownStage);
    expect(run.status).toBe(2);
    // The server's line comes through its pipe, read by this event loop once spawnSync returned.
    for (let i = 0; i < 40 && !logged.test(server.stderr().slice(before.length)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(server.stderr().slice(before.length)).toMatch(logged);
    // The copy without node's script works only through the server: refused, it fails.
    const refused = spawnSync(wrapper[0]!, [...wrapper.slice(1), launcher, 'bogus', '--hook-socket', socket], { input: '{}', encoding: 'utf8' });
    expect(refused.stderr).toContain('hook.cjs');
  });

  it('a root peer is served (the control of the cases above)', () => {
    const run = spawnSync(launcher, ['bogus', '--hook-socket', socket], { input: '{}', encoding: 'utf8' });
    expect(run.stderr).toBe(unknownStage);
    expect(run.status).toBe(2);
  });
});

describe('a server that dies mid-request', () => {
  // The request blocks in the server, inside the hook's namespace, opening the log: a FIFO nobody reads.
  it.each([
    ['killed (SIGKILL)', 'SIGKILL' as const, null],
    ['stopped (SIGTERM), the request still hanging after the grace period', 'SIGTERM' as const, 1],
  ])(
    '%s: the launcher reports one line and exits 1, nothing mounted',
    async (_name, signal, serverStatus) => {
      const dir = scratchDir('mountat-dying-');
      const own = await startServer(join(dir, 'hook.sock'));
      try {
        const bundle = bundleWith({ args: ['/bin/true'] });
        const fifo = join(dir, 'log.fifo');
        spawnSync('mkfifo', [fifo]);
        const table = mountTable();
        const state = JSON.stringify({ ociVersion: '1.0.2', id: 'dying', status: 'creating', pid: process.pid, bundle: bundle.dir });
        const hook = spawn(launcher, ['createContainer', '--state-dir', bundle.stateDir, '--log-file', fifo, '--hook-socket', join(dir, 'hook.sock')], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stderr = '';
        hook.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        hook.stdin.end(state);
        const exited = new Promise<number | null>((resolve) => hook.once('exit', (code) => resolve(code)));
        // Until the server holds the request: one of its threads blocked opening the FIFO.
        const blocked = () => spawnSync('sh', ['-c', `cat /proc/${own.process.pid}/task/*/wchan`], { encoding: 'utf8' }).stdout.includes('wait_for_partner');
        for (let i = 0; i < 200 && !blocked(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
        expect(blocked()).toBe(true);
        const serverExited = new Promise<number | null>((resolve) => own.process.once('exit', (code) => resolve(code)));
        own.process.kill(signal);
        expect(await serverExited).toBe(serverStatus);
        expect(await exited).toBe(1);
        expect(stderr).toMatch(/^mountat-hook: the hook server at \S+ ended the connection without an answer \([^)]*\)\n$/);
        if (signal === 'SIGTERM') expect(own.stderr()).toContain('requests still running 5 s after the signal; exiting without them');
        expect(existsSync(join(dir, 'hook.sock'))).toBe(signal === 'SIGKILL');
        expect(mountTable()).toBe(table);
        expect(existsSync(bundle.stateDir) ? readdirSync(bundle.stateDir) : []).toEqual([]);
      } finally {
        own.process.kill('SIGKILL');
        spawnSync('rm', ['-rf', dir]);
      }
    },
    20_000,
  );
});

describe("the server's lines are node's", () => {
  const state = (extra: object = {}) => JSON.stringify({ ociVersion: '1.0.2', id: 'parity', status: 'creating', pid: 1, bundle: '/nonexistent', ...extra });
  const cases: Array<[string, string[], string]> = [
    ['an unknown stage', ['bogus'], state()],
    ['poststart', ['poststart'], state()],
    ['a state that is not one', ['createContainer'], '{}'],
    ['a state that is not JSON', ['createContainer'], 'nope'],
    ['no state', ['poststop'], ''],
    ['a bad log level', ['createContainer', '--log-level', 'loud'], state()],
    ['a --root-fd that is not open', ['createContainer', '--root-fd', '9'], state()],
    ['a --root-fd that is no number', ['createContainer', '--root-fd', 'x'], state()],
    ['a bundle that is not there', ['createContainer'], state()],
    ['a bad annotation', ['createContainer'], state({ annotations: { 'org.mountat.tmp.size': 'lots' } })],
    ['poststop with nothing recorded', ['poststop'], state({ status: 'stopped' })],
    ['prestart without a pid', ['prestart'], state({ pid: undefined })],
  ];
  it.each(cases)('%s', (_name, args, input) => {
    const dir = scratchDir('mountat-parity-');
    const run = (hookSocket: string) => spawnSync(HOOK, [...args, '--state-dir', dir, '--hook-socket', hookSocket], { input, encoding: 'utf8' });
    const byNode = run('none');
    const byServer = run(socket);
    spawnSync('rm', ['-rf', dir]);
    expect({ status: byServer.status, stdout: byServer.stdout, stderr: byServer.stderr }).toEqual({
      status: byNode.status,
      stdout: byNode.stdout,
      stderr: byNode.stderr,
    });
  });
});

describe('--root-fd through the server', () => {
  // As the runner hands its hooks an action's root: the launcher attaches its fd 3, and the server works on its copy.
  it('mounts on the root the launcher holds open, and poststop takes it down', () => {
    const bundle = bundleWith({ args: ['/bin/true'] });
    const rootfs = join(bundle.dir, 'rootfs');
    const table = mountTable();
    const root = openSync(rootfs, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      const hook = (stage: string, status: string) =>
        spawnSync(launcher, [stage, '--state-dir', bundle.stateDir, '--root-fd', '3', '--hook-socket', socket], {
          input: JSON.stringify({ ociVersion: '1.0.2', id: 'root-fd', status, pid: 1, bundle: '/nonexistent' }),
          stdio: ['pipe', 'pipe', 'pipe', root],
          encoding: 'utf8',
        });
      const mounted = hook('createContainer', 'creating');
      expect(mounted.stderr).toBe('');
      expect(mounted.stdout).toMatch(/^mounted proc on \/proc .* in the root at fd 3\n$/);
      expect(mountTable()).not.toBe(table);
      expect(existsSync(join(rootfs, 'proc', 'self'))).toBe(true);
      const removed = hook('poststop', 'stopped');
      expect(removed.stderr).toBe('');
      expect(removed.status).toBe(0);
    } finally {
      closeSync(root);
    }
    expect(mountTable()).toBe(table);
    expect(readdirSync(bundle.stateDir)).toEqual([]);
  });
});

describe("the hook's own umask", () => {
  // The hook's own process creates mountpoint directories with the runtime's umask: so does the server's thread.
  it.each([
    ['077', '700'],
    ['022', '755'],
  ])('umask %s: the mountpoint directories it creates are %s', (umask, mode) => {
    const bundle = bundleWith({ args: ['/bin/true'] });
    const rootfs = join(bundle.dir, 'rootfs');
    const state = JSON.stringify({ ociVersion: '1.0.2', id: `umask-${umask}`, status: 'creating', pid: 1, bundle: bundle.dir });
    const hook = (stage: string) =>
      spawnSync('sh', ['-c', `umask ${umask}; exec "$0" "$@"`, launcher, stage, '--state-dir', bundle.stateDir, '--hook-socket', socket], {
        input: state,
        encoding: 'utf8',
      });
    const table = mountTable();
    const mounted = hook('createContainer');
    expect(mounted.stderr).toBe('');
    try {
      // A bind of the rootfs alone (not recursive) shows the directories beneath the mounts.
      const seen = spawnSync(
        'unshare',
        ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && stat -c %a "$2/proc" "$2/sys"', 'sh', rootfs, bundle.dir],
        {
          encoding: 'utf8',
        },
      );
      expect(seen.stdout).toBe(`${mode}\n${mode}\n`);
    } finally {
      expect(hook('poststop').status).toBe(0);
    }
    expect(mountTable()).toBe(table);
  });
});

describe('the hook server itself', () => {
  it('refuses a second server on the same socket, and a directory others can enter', () => {
    const second = spawnSync(process.execPath, [join(repo, 'bin', 'mountat.js'), 'hook-server', '--socket', socket], { encoding: 'utf8' });
    expect(second.stderr).toBe(`mountat: another hook server serves ${socket}\n`);
    expect(second.status).toBe(1);
    const open = scratchDir('mountat-open-');
    spawnSync('chmod', ['755', open]);
    const third = spawnSync(process.execPath, [join(repo, 'bin', 'mountat.js'), 'hook-server', '--socket', join(open, 'hook.sock')], { encoding: 'utf8' });
    expect(third.stderr).toBe(`mountat: ${open}: owned by uid 0, mode 755: the hook socket's directory must be root's and 0700\n`);
    expect(third.status).toBe(1);
    spawnSync('rm', ['-rf', open]);
  });

  it('stops on SIGTERM, removing its socket', async () => {
    const dir = scratchDir('mountat-stop-');
    const own = await startServer(join(dir, 'hook.sock'));
    expect(existsSync(join(dir, 'hook.sock'))).toBe(true);
    expect(await stopServer(own)).toBe(0);
    expect(existsSync(join(dir, 'hook.sock'))).toBe(false);
    writeFileSync(join(dir, 'x'), '');
    spawnSync('rm', ['-rf', dir]);
  });
});
