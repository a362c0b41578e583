// Podman for the tests that run it (test/pod.test.ts, test/podman.test.ts), isolated from any other use of podman on
// the machine: its own storage (images, containers, volumes), run state, locks and events under a scratch directory,
// its own containers.conf (CONTAINERS_CONF) and storage.conf (CONTAINERS_STORAGE_CONF), all removed at the end.
// Nothing is pulled: images are imported or built here.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Runtime } from './oci.js';
import { repo, mountsUnder, scratchDir } from './roots.js';

const exec = promisify(execFile);
const BIG = { maxBuffer: 64 * 1024 * 1024 };

export interface Podman {
  dir: string;
  /**
   * The environment naming this instance's configuration (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), to add to
   * process.env for a podman run by hand; `runtime` picks the containers.conf that names that runtime.
   */
  env(runtime?: Runtime): NodeJS.ProcessEnv;
  /** The podman CLI with this instance's configuration; rejects with its stderr. */
  podman(args: string[]): Promise<string>;
  /**
   * Removes the cgroups podman's cgroupfs manager made on the host and left (libpod_parent, see
   * removeNewLibpodCgroups), then the storage and configuration (refuses while anything is mounted there).
   */
  remove(): void;
}

const CGROUPS = '/sys/fs/cgroup';

/**
 * The cgroup directories podman's cgroupfs manager parents everything in, that exist now: `libpod_parent` in each
 * hierarchy (/sys/fs/cgroup/<controller>/, or /sys/fs/cgroup itself where it is cgroup2 alone).
 */
function libpodCgroups(): string[] {
  const hierarchies = [CGROUPS, ...readdirSync(CGROUPS, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => join(CGROUPS, entry.name))];
  return hierarchies.map((hierarchy) => join(hierarchy, 'libpod_parent')).filter((dir) => existsSync(dir));
}

/**
 * Podman never removes `libpod_parent` nor conmon's cgroup in it (`libpod_parent/conmon`): removes both where they
 * were not in `before` (libpodCgroups() at the start). A directory already gone (ENOENT) or still in use (EBUSY:
 * processes or child cgroups, another podman's perhaps) is left.
 */
function removeNewLibpodCgroups(before: string[]): void {
  for (const dir of libpodCgroups().filter((dir) => !before.includes(dir))) {
    for (const cgroup of [join(dir, 'conmon'), dir]) {
      try {
        rmdirSync(cgroup);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'EBUSY') throw error;
      }
    }
  }
}

export interface PodmanOptions {
  /**
   * The storage driver (default overlay). vfs makes no mounts: a test that compares mount tables around a
   * container sees only the runtime's and mountat's.
   */
  driver?: 'overlay' | 'vfs';
}

/**
 * A podman of the test's own under a scratch directory: its storage, run state, locks and events there, and an
 * empty hooks directory (`<dir>/hooks.d`) named in containers.conf, which a test may fill.
 */
export async function startPodman(options: PodmanOptions = {}): Promise<Podman> {
  // Fails, rather than skips, where podman is missing: scripts/test.sh installs it.
  await exec('podman', ['--version']).catch((error: Error) => {
    throw new Error(`podman is needed for this test (scripts/test.sh installs it): ${error.message}`);
  });
  const cgroupsBefore = libpodCgroups();
  const dir = scratchDir('mountat-podman-');
  const hooks = join(dir, 'hooks.d');
  mkdirSync(hooks);
  mkdirSync(join(dir, 'tmp'));
  const containersConf = (runtime: Runtime) =>
    [
      '[containers]',
      // Root on this kind of machine lacks CAP_SYS_RESOURCE: podman's default ulimits (1048576 open files) are refused.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      // No systemd here: cgroups managed by podman itself, events in a file.
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      // runc by default; crun refuses this machine's hybrid cgroup hierarchy (FACTS.md) unless run in a mount
      // namespace without the cgroup2 mount (test/podman.test.ts does that).
      `runtime = "${runtime}"`,
      // An empty hooks directory: hooks.d files installed on the machine (the podman hooks test installs mountat's
      // in its own) do not apply here. `podman kube play` has no --hooks-dir.
      `hooks_dir = [${JSON.stringify(hooks)}]`,
      // Locks in files under tmp_dir, not in the shared memory segment /libpod_lock, which every root podman on the
      // machine uses whatever its storage: this podman's container locks stay apart from another's.
      'lock_type = "file"',
      `tmp_dir = ${JSON.stringify(join(dir, 'tmp'))}`,
      '',
    ].join('\n');
  for (const runtime of ['runc', 'crun'] as const) writeFileSync(join(dir, `containers-${runtime}.conf`), containersConf(runtime));
  writeFileSync(
    join(dir, 'storage.conf'),
    ['[storage]', `driver = "${options.driver ?? 'overlay'}"`, `graphroot = ${JSON.stringify(join(dir, 'storage'))}`, `runroot = ${JSON.stringify(join(dir, 'run'))}`, ''].join('\n'),
  );
  const envOf = (runtime: Runtime = 'runc') => ({ CONTAINERS_CONF: join(dir, `containers-${runtime}.conf`), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') });
  const env = { ...process.env, ...envOf() };
  return {
    dir,
    env: envOf,
    async podman(args) {
      try {
        return (await exec('podman', args, { ...BIG, env })).stdout;
      } catch (error) {
        const e = error as { stderr?: string; stdout?: string; message: string };
        throw new Error(`podman ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().split('\n').slice(-15).join('\n')}`);
      }
    },
    remove() {
      removeNewLibpodCgroups(cgroupsBefore);
      const left = mountsUnder(dir);
      if (left.length > 0) throw new Error(`podman's storage still has mounts: ${left.join(', ')}`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The images the worker pod runs, by the names test/pod.test.ts gives them (prefixed: other tests use podman too). */
export const POD_IMAGES = {
  runner: 'localhost/mountat-test-pod-runner:test',
  worker: 'localhost/mountat-test-pod-worker:test',
  busybox: 'localhost/mountat-test-pod-busybox:test',
};

async function run(command: string, args: string[]): Promise<string> {
  try {
    return (await exec(command, args, BIG)).stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

/**
 * Builds POD_IMAGES in this podman: the runner from the repository's Dockerfile on the bases made from Debian's
 * packages (scripts/docker/make-base-rootfs.sh, cached; as test/docker.test.ts builds it under dockerd), bb_worker's
 * stand-in on top of it (test/fixtures/pod/Containerfile), and a busybox image for the init container, imported
 * from a busybox root. About a minute and a half on 2 cores, most of it the Dockerfile's npm ci and build.
 */
export async function buildPodImages(podman: Podman): Promise<void> {
  const bases = (await run(join(repo, 'scripts', 'docker', 'make-base-rootfs.sh'), [])).trim();
  const runtimeBase = 'localhost/mountat-test-pod-base/runtime:local';
  const buildBase = 'localhost/mountat-test-pod-base/build:local';
  await podman.podman(['import', '--quiet', join(bases, 'runtime.tar'), runtimeBase]);
  await podman.podman(['import', '--quiet', join(bases, 'build.tar'), buildBase]);
  // --network host: npm ci in the build stage needs the registry, and podman's default network (netavark) would add
  // iptables rules on the host. The image is OCI: the Dockerfile's HEALTHCHECK is dropped (Kubernetes ignores it).
  await podman.podman(['build', '--quiet', '--network', 'host', '--build-arg', `BUILD_BASE=${buildBase}`, '--build-arg', `RUNTIME_BASE=${runtimeBase}`, '-t', POD_IMAGES.runner, repo]);

  const context = join(podman.dir, 'stand-in');
  mkdirSync(context);
  copyFileSync('/bin/busybox', join(context, 'busybox'));
  for (const file of ['test/fixtures/pod/Containerfile', 'test/fixtures/pod/worker-stand-in.mjs', 'scripts/make-busybox-root.sh']) {
    copyFileSync(join(repo, file), join(context, file.split('/').pop()!));
  }
  await podman.podman(['build', '--quiet', '--network', 'none', '--build-arg', `RUNNER_IMAGE=${POD_IMAGES.runner}`, '-t', POD_IMAGES.worker, '-f', join(context, 'Containerfile'), context]);

  const busybox = join(podman.dir, 'busybox-root');
  await run(join(repo, 'scripts', 'make-busybox-root.sh'), [busybox]);
  await run('tar', ['-C', busybox, '-cf', `${busybox}.tar`, '.']);
  // An imported image has no configuration: PATH is set so that the init container's command is found.
  await podman.podman(['import', '--quiet', '--change', 'ENV=PATH=/bin:/usr/bin', `${busybox}.tar`, POD_IMAGES.busybox]);
  rmSync(busybox, { recursive: true });
  rmSync(`${busybox}.tar`);
}
