// The OCI side of the benchmark: the hook (hooks/mountat-hook) invoked by hand as a runtime
// would, and whole runc/crun containers with the hook against the runtime's own mounts.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, run } from './util.mjs';

export const HOOK = join(REPO, 'hooks/mountat-hook');
/** The hook's environment, as the brief's and hooks.d's entries give it. */
const HOOK_ENV = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
// runc spec's mounts that the hook replaces or the benchmark drops from both variants.
const PROC_SYS = new Set(['/proc', '/sys']);
const DROPPED = new Set(['/dev/shm', '/dev/mqueue', '/sys/fs/cgroup']);
const BUILTIN_TMP = { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=512m'] };

function busyboxRoot(dir) {
  run('bash', [join(REPO, 'scripts/make-busybox-root.sh'), dir]);
  // Made beforehand, as test/helpers/oci.ts does: runc would create it for its /dev tmpfs.
  mkdirSync(join(dir, 'dev'), { recursive: true });
}

function ociState(id, bundle, status) {
  return JSON.stringify({ ociVersion: '1.0.2', id, status, pid: 1, bundle });
}

/**
 * `mountat hook-server` on a socket in the scratch directory (0700, as the server demands), for
 * the rows "through the hook server". Resolves once it serves; `stop()` ends it (SIGTERM).
 */
export async function startHookServer(scratch, env) {
  const dir = join(scratch, 'hook-server');
  mkdirSync(dir, { mode: 0o700 });
  const socket = join(dir, 'hook.sock');
  const child = spawn(process.execPath, [join(REPO, 'bin/mountat.js'), 'hook-server', '--socket', socket, '--workers', '2'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('serving')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`bench: mountat hook-server exited (${code}) before serving`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { socket, stop };
}

/**
 * The hook on its own, outside any runtime: a bundle whose config.json names only the rootfs,
 * and the two invocations a runtime makes (createContainer, then poststop) with the state JSON
 * on stdin (a file each, which bench/outside.py opens anew for every start). createContainer mounts
 * into this (private) namespace; poststop takes them down. Commands for timeSpawns(), in that order:
 * the launcher starting node (`--hook-socket none`), then the same pair through the hook server
 * at `socket`.
 */
export function makeHookCommands(scratch, env, socket) {
  const bundle = join(scratch, 'hook-bundle');
  const stateDir = join(scratch, 'hook-state');
  mkdirSync(stateDir);
  busyboxRoot(join(bundle, 'rootfs'));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', root: { path: 'rootfs' } }));
  const stdin = (status) => {
    const path = join(scratch, `hook-state-${status}.json`);
    writeFileSync(path, ociState('mountat-bench', bundle, status));
    return path;
  };
  return {
    stateDir,
    createContainer: { argv: [HOOK, 'createContainer', '--state-dir', stateDir, '--hook-socket', 'none'], env, stdin: stdin('creating') },
    poststop: { argv: [HOOK, 'poststop', '--state-dir', stateDir, '--hook-socket', 'none'], env, stdin: stdin('stopped') },
    createContainerServer: { argv: [HOOK, 'createContainer', '--state-dir', stateDir, '--hook-socket', socket], env, stdin: stdin('creating') },
    poststopServer: { argv: [HOOK, 'poststop', '--state-dir', stateDir, '--hook-socket', socket], env, stdin: stdin('stopped') },
  };
}

/**
 * A bundle from `runc spec` running busybox /bin/true. With `hookStateDir`, the runtime mounts
 * no proc, sysfs or tmp and the hook does it at createContainer (and cleans up at poststop),
 * through the hook server at `hookSocket` ("none": the launcher starts node);
 * without, the runtime mounts spec's proc and sysfs and a /tmp tmpfs with the hook's options.
 */
function makeBundle(dir, hookStateDir, hookSocket) {
  busyboxRoot(join(dir, 'rootfs'));
  run('runc', ['spec', '--bundle', dir]);
  const path = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(path, 'utf8'));
  const keep = (mount) => !DROPPED.has(mount.destination) && (!hookStateDir || !PROC_SYS.has(mount.destination));
  config.mounts = config.mounts.filter(keep);
  config.root.readonly = false;
  config.process.terminal = false;
  config.process.args = ['/bin/true'];
  if (hookStateDir) {
    const hook = (stage) => ({ path: HOOK, args: ['mountat-hook', stage, '--state-dir', hookStateDir, '--hook-socket', hookSocket], env: HOOK_ENV });
    config.hooks = { createContainer: [hook('createContainer')], poststop: [hook('poststop')] };
  } else {
    config.mounts.push(BUILTIN_TMP);
  }
  writeFileSync(path, `${JSON.stringify(config, null, 1)}\n`);
}

/** How each runtime is started. crun refuses this machine's hybrid cgroup layout: it gets a pure cgroup2 mount and no manager. */
function runtimeCommand(runtime, runtimeRoot, bundle, id) {
  if (runtime === 'runc') return ['/usr/sbin/runc', '--root', runtimeRoot, 'run', '--bundle', bundle, id];
  const setup = 'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec crun --cgroup-manager=disabled "$@"';
  return ['/usr/bin/unshare', '-m', '--propagation', 'private', 'sh', '-c', setup, 'crun', '--root', runtimeRoot, 'run', '--bundle', bundle, id];
}

/**
 * The container variants, runtime × (hook starting node, hook through the server at `socket`,
 * built-in), each with its own bundle, runtime state root and hook state dir, so that what one
 * leaves cannot change another. Commands for timeSpawns(), with environment `env`.
 */
export function makeContainerCommands(scratch, runtimes, env, socket) {
  const commands = {};
  const dirs = [];
  for (const runtime of runtimes) {
    for (const variant of ['hook', 'server', 'builtin']) {
      const base = join(scratch, `${runtime}-${variant}`);
      const bundle = join(base, 'bundle');
      const runtimeRoot = join(base, 'runtime');
      const hookState = variant === 'builtin' ? undefined : join(base, 'hook-state');
      mkdirSync(runtimeRoot, { recursive: true });
      if (hookState) mkdirSync(hookState);
      makeBundle(bundle, hookState, variant === 'server' ? socket : 'none');
      commands[`${runtime} ${variant}`] = { argv: runtimeCommand(runtime, runtimeRoot, bundle, `mountat-bench-${runtime}-${variant}`), env };
      dirs.push(runtimeRoot, ...(hookState ? [hookState] : []));
    }
  }
  return { commands, dirs };
}

/** Directories that must be empty at the end (hook records, runtime state); the non-empty ones. */
export function nonEmpty(dirs) {
  return dirs.filter((dir) => existsSync(dir) && readdirSync(dir).length > 0).map((dir) => `${dir}: ${readdirSync(dir).join(', ')}`);
}
