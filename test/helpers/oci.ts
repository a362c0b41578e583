// OCI bundles on a busybox root and the real runc and crun from Debian to run them.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { readJson } from './checked.js';
import { repo, scratchDir } from './roots.js';

export const HOOK = join(repo, 'hooks', 'mountat-hook');
export type Runtime = 'runc' | 'crun';
export const RUNTIMES: Runtime[] = ['runc', 'crun'];

export interface HookSpec {
  path?: string;
  args: string[];
  env?: string[];
  timeout?: number;
}

export interface BundleOptions {
  args: string[];
  env?: string[];
  annotations?: Record<string, string>;
  hooks?: Partial<Record<'prestart' | 'createRuntime' | 'createContainer' | 'poststart' | 'poststop', HookSpec[]>>;
  /** Mount entries of the runtime's own to keep; by default proc, sysfs and tmp are all left to the hook. */
  keepRuntimeMounts?: string[];
  readonlyRoot?: boolean;
  /**
   * Keep `runc spec`'s linux.maskedPaths and linux.readonlyPaths (default true). Both runtimes
   * apply them after the createContainer hooks, on top of the hook's proc: a test of the hook's
   * own covers must drop them, or it would see the runtime's.
   */
  runtimeProcCovers?: boolean;
  /**
   * A user namespace of the container's own: its uids and gids 0 to 65535 are USERNS_HOST_ID onwards
   * on the host, and the rootfs is chowned to match (the container's root owns it). `network`:
   * whether the container keeps the network namespace of `runc spec` (owned by its user namespace)
   * or shares the runtime's (owned by the host's).
   */
  userNamespace?: { network: boolean };
}

/** Where a bundle with `userNamespace` maps its uid and gid 0. */
export const USERNS_HOST_ID = 100_000;
const USERNS_SIZE = 65_536;

interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** What makeBundle and setHooks change in `runc spec`'s config.json. */
interface RuncSpec {
  mounts: Array<{ destination: string }>;
  root: { readonly: boolean };
  linux: {
    maskedPaths?: string[];
    readonlyPaths?: string[];
    namespaces: Array<{ type: string }>;
    uidMappings?: IdMapping[];
    gidMappings?: IdMapping[];
  };
  process: { terminal: boolean; args: string[]; env: string[] };
  annotations?: Record<string, string>;
  hooks?: Record<string, HookSpec[]>;
}

export interface Bundle {
  dir: string;
  stateDir: string;
  runtimeRoot: string;
}

/** A bundle from `runc spec`, with the runtime's proc, sysfs and cgroup mounts removed. */
export function makeBundle(options: BundleOptions): Bundle {
  const dir = scratchDir('mountat-bundle-');
  execFileSync(join(repo, 'scripts', 'make-busybox-root.sh'), [join(dir, 'rootfs')]);
  // runc creates /dev for its own tmpfs there; made beforehand so a listing before and after compares only what the hook did.
  mkdirSync(join(dir, 'rootfs', 'dev'));
  execFileSync('runc', ['spec', '--bundle', dir]);
  const config = readJson<RuncSpec>(join(dir, 'config.json'));
  const keep = new Set(['/dev', '/dev/pts', ...(options.keepRuntimeMounts ?? [])]);
  config.mounts = config.mounts.filter((mount) => keep.has(mount.destination));
  config.root.readonly = options.readonlyRoot ?? false;
  if (options.runtimeProcCovers === false) {
    delete config.linux.maskedPaths;
    delete config.linux.readonlyPaths;
  }
  const userns = options.userNamespace;
  if (userns) {
    const mapping = [{ containerID: 0, hostID: USERNS_HOST_ID, size: USERNS_SIZE }];
    config.linux.namespaces = [...config.linux.namespaces.filter((ns) => userns.network || ns.type !== 'network'), { type: 'user' }];
    config.linux.uidMappings = mapping;
    config.linux.gidMappings = mapping;
    execFileSync('chown', ['-R', `${USERNS_HOST_ID}:${USERNS_HOST_ID}`, join(dir, 'rootfs')]);
    // mkdtemp made the bundle 0700: the container's root, a stranger to it on the host, must reach its rootfs.
    chmodSync(dir, 0o755);
  }
  config.process.terminal = false;
  config.process.args = options.args;
  config.process.env = ['PATH=/bin:/usr/bin', ...(options.env ?? [])];
  config.annotations = options.annotations ?? {};
  config.hooks = Object.fromEntries(
    Object.entries(options.hooks ?? {}).map(([stage, hooks]) => [stage, hooks.map((hook) => ({ path: hook.path ?? HOOK, ...hook }))]),
  );
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  const stateDir = join(dir, '..', `${dir.split('/').pop()}-state`);
  return { dir, stateDir, runtimeRoot: join(dir, '..', `${dir.split('/').pop()}-runtime`) };
}

/** The standard hook entries: mount at createContainer, clean up at poststop. */
export function standardHooks(bundle: Bundle, extra: string[] = []): BundleOptions['hooks'] {
  const env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
  return {
    createContainer: [{ args: ['mountat-hook', 'createContainer', '--state-dir', bundle.stateDir, ...extra], env }],
    poststop: [{ args: ['mountat-hook', 'poststop', '--state-dir', bundle.stateDir, ...extra], env }],
  };
}

export function setHooks(bundle: Bundle, hooks: BundleOptions['hooks'], annotations?: Record<string, string>): void {
  const path = join(bundle.dir, 'config.json');
  const config = readJson<RuncSpec>(path);
  config.hooks = Object.fromEntries(Object.entries(hooks ?? {}).map(([stage, list]) => [stage, list.map((hook) => ({ path: hook.path ?? HOOK, ...hook }))]));
  if (annotations) config.annotations = { ...config.annotations, ...annotations };
  writeFileSync(path, JSON.stringify(config, null, 1));
}

export interface RuntimeRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The mount table of the namespace the runtime ran in, before and after. */
  tableBefore: string;
  tableAfter: string;
}

/**
 * Run the container to completion in a mount namespace of its own (so its table can be
 * compared before and after). crun refuses this machine's hybrid cgroup layout: there it runs
 * with a pure cgroup2 /sys/fs/cgroup and no cgroup manager.
 */
export function runContainer(runtime: Runtime, bundle: Bundle, id: string): RuntimeRun {
  const tables = scratchDir('mountat-tables-');
  const setup = runtime === 'crun' ? 'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && ' : '';
  const command = runtime === 'runc' ? `runc --root "$3" run --bundle "$2" "$4"` : `crun --root "$3" --cgroup-manager=disabled run --bundle "$2" "$4"`;
  const script = `${setup}cat /proc/self/mountinfo > "$1/before"; ${command}; rc=$?; cat /proc/self/mountinfo > "$1/after"; exit $rc`;
  const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', tables, bundle.dir, bundle.runtimeRoot, id], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const tableBefore = readFileSync(join(tables, 'before'), 'utf8');
  const tableAfter = readFileSync(join(tables, 'after'), 'utf8');
  execFileSync('rm', ['-rf', tables]);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, tableBefore, tableAfter };
}

/** Every path beneath `dir` with its type, to compare a bundle before and after. */
export function listing(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const path = join(prefix, name);
    const st = lstatSync(join(dir, path));
    out.push(`${path}${st.isDirectory() ? '/' : st.isSymbolicLink() ? '@' : ''}`);
    if (st.isDirectory()) out.push(...listing(dir, path));
  }
  return out;
}

export function removeBundle(bundle: Bundle): void {
  execFileSync('rm', ['-rf', bundle.dir, bundle.stateDir, bundle.runtimeRoot]);
}

/** makeBundle for the calling test file, every bundle it made removed after each test. */
export function bundlesRemovedAfterEach(): (options: BundleOptions) => Bundle {
  let bundles: Bundle[] = [];
  afterEach(() => {
    for (const bundle of bundles) removeBundle(bundle);
    bundles = [];
  });
  return (options) => {
    const bundle = makeBundle(options);
    bundles.push(bundle);
    return bundle;
  };
}
