// An OCI bundle whose container runs this checkout's mountat (`mountat exec`, the runner) in a
// user namespace of its own (0 → USERNS_HOST_ID, 65536 ids): its rootfs holds only mount points
// and the links of a merged /usr; the host's /usr and /etc and this repository are bound into it
// read-only, and a scratch directory the container's root owns is bound at /scratch (the action
// roots, the state directory, the runner's socket). The runtime mounts proc, sysfs and /tmp.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readJson } from './checked.js';
import { USERNS_HOST_ID, type Bundle, type Runtime, type RuntimeRun } from './oci.js';
import { repo, scratchDir } from './roots.js';

/** What the runner needs in its user namespace (docs/runner.md), and the actions' default capabilities. */
const CAPABILITIES = ['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID'].map(
  (name) => `CAP_${name}`,
);

export interface UserlandBundle extends Bundle {
  /** The host's path of the container's /scratch. */
  scratch: string;
}

interface Spec {
  mounts: Array<{ destination: string; type?: string; source?: string; options?: string[] }>;
  root: { readonly: boolean };
  process: { terminal: boolean; args: string[]; env: string[]; capabilities: Record<string, string[]> };
  linux: {
    namespaces: Array<{ type: string }>;
    uidMappings?: object[];
    gidMappings?: object[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
  };
}

export interface UserlandOptions {
  args: string[];
  /** A network namespace of the container's own (then a sysfs of its own); without, the host's /sys bound read-only. */
  network: boolean;
  /**
   * The user namespace of its own (default true). Without it the container is the host's root, with
   * CAP_SETFCAP besides, which mapping uid 0 into a user namespace made inside it takes (Linux 5.12+).
   */
  mapped?: boolean;
  /** Keep `runc spec`'s maskedPaths and readonlyPaths (default true). */
  runtimeMasks?: boolean;
}

export function makeUserlandBundle(options: UserlandOptions): UserlandBundle {
  const dir = scratchDir('mountat-userland-');
  // mkdtemp's 0700 would shut the container's root out of its own rootfs.
  chmodSync(dir, 0o755);
  const rootfs = join(dir, 'rootfs');
  for (const sub of ['usr', 'etc', 'proc', 'sys', 'dev', 'tmp', 'scratch', repo.slice(1)]) mkdirSync(join(rootfs, sub), { recursive: true });
  for (const link of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${link}`, join(rootfs, link));
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  execFileSync('runc', ['spec', '--bundle', dir]);
  const config = readJson<Spec>(join(dir, 'config.json'));
  const bind = (source: string, destination: string, mode: 'ro' | 'rw') => ({ destination, type: 'bind', source, options: ['rbind', mode, 'nosuid', 'nodev'] });
  const sys = options.network
    ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] }
    : // runc 1.1 does not fall back to a bind itself: a new sysfs is refused where the user namespace does not own the network namespace.
      bind('/sys', '/sys', 'ro');
  config.mounts = [
    ...config.mounts.filter((mount) => ['/proc', '/dev', '/dev/pts'].includes(mount.destination)),
    sys,
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] },
    bind('/usr', '/usr', 'ro'),
    bind('/etc', '/etc', 'ro'),
    bind(repo, repo, 'ro'),
    bind(scratch, '/scratch', 'rw'),
  ];
  config.root.readonly = true;
  config.process.terminal = false;
  config.process.args = options.args;
  config.process.env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'];
  const mapped = options.mapped ?? true;
  const capabilities = mapped ? CAPABILITIES : [...CAPABILITIES, 'CAP_SETFCAP'];
  config.process.capabilities = Object.fromEntries(Object.keys(config.process.capabilities).map((set) => [set, capabilities]));
  config.linux.namespaces = config.linux.namespaces.filter((ns) => options.network || ns.type !== 'network');
  if (mapped) {
    const mapping = [{ containerID: 0, hostID: USERNS_HOST_ID, size: 65_536 }];
    config.linux.namespaces.push({ type: 'user' });
    config.linux.uidMappings = mapping;
    config.linux.gidMappings = mapping;
  }
  if (options.runtimeMasks === false) {
    delete config.linux.maskedPaths;
    delete config.linux.readonlyPaths;
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  if (mapped) execFileSync('chown', ['-R', `${USERNS_HOST_ID}:${USERNS_HOST_ID}`, rootfs, scratch]);
  const name = dir.split('/').pop()!;
  return { dir, scratch, stateDir: join(dir, '..', `${name}-state`), runtimeRoot: join(dir, '..', `${name}-runtime`) };
}

/** Files under the scratch directory, owned by the container's root (as it would have made them): the mapped one, unless `mapped` is false. */
export function chownToContainer(path: string, mapped = true): void {
  if (mapped) execFileSync('chown', ['-R', `${USERNS_HOST_ID}:${USERNS_HOST_ID}`, path]);
}

export interface StartedContainer {
  /** The run as runContainer reports it, once the container has ended. */
  ended: Promise<RuntimeRun>;
  /** SIGTERM to the container's process 1, through the runtime. */
  stop(): void;
}

/**
 * runContainer (test/helpers/oci.ts) without waiting: for a container that serves until stopped.
 * In a mount namespace of its own, with crun's cgroup2 workaround.
 */
export function startContainer(runtime: Runtime, bundle: Bundle, id: string): StartedContainer {
  const tables = scratchDir('mountat-tables-');
  const setup = runtime === 'crun' ? 'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && ' : '';
  const command = runtime === 'runc' ? `runc --root "$3" run --bundle "$2" "$4"` : `crun --root "$3" --cgroup-manager=disabled run --bundle "$2" "$4"`;
  const script = `${setup}cat /proc/self/mountinfo > "$1/before"; ${command}; rc=$?; cat /proc/self/mountinfo > "$1/after"; exit $rc`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', tables, bundle.dir, bundle.runtimeRoot, id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const ended = new Promise<RuntimeRun>((resolve) =>
    child.once('exit', (status) => {
      const tableBefore = readFileSync(join(tables, 'before'), 'utf8');
      const tableAfter = readFileSync(join(tables, 'after'), 'utf8');
      execFileSync('rm', ['-rf', tables]);
      resolve({ status, stdout, stderr, tableBefore, tableAfter });
    }),
  );
  return {
    ended,
    stop: () => execFileSync(runtime, ['--root', bundle.runtimeRoot, 'kill', id, 'TERM']),
  };
}
