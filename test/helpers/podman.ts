// Podman for the tests that run it (test/pod.test.ts, test/podman.test.ts), isolated from any other use of podman on
// the machine: its own storage (images, containers, volumes), run state, locks and events under a scratch directory,
// its own containers.conf (CONTAINERS_CONF) and storage.conf (CONTAINERS_STORAGE_CONF), all removed at the end.
// Nothing is pulled: images are imported or built here.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf } from '../../src/base/index.js';
import { codeOf } from './checked.js';
import { buildRunnerImage, run, type EngineCli } from './docker.js';
import type { Runtime } from './oci.js';
import { busyboxRoot, mountsUnder, removeTree, repo, scratchDir } from './roots.js';

export interface Podman {
  dir: string;
  /**
   * The environment naming this instance's configuration (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), to add to
   * process.env for a podman run by hand; `runtime` picks the containers.conf that names that runtime.
   */
  env(runtime?: Runtime): NodeJS.ProcessEnv;
  /** The podman CLI with this instance's configuration; rejects with its stderr. */
  podman: EngineCli;
  /**
   * Removes the cgroups podman's cgroupfs manager made on the host and left (libpod_parent, see
   * removeNewLibpodCgroups), then the storage and configuration (refuses while anything is mounted there).
   */
  remove(): void;
}

const CGROUPS = '/sys/fs/cgroup';

/**
 * The cgroup directories podman's cgroupfs manager parents everything in, that exist now: `libpod_parent` in each
 * hierarchy (/sys/fs/cgroup/<controller>/, or /sys/fs/cgroup itself where it is cgroup2 alone), and every directory
 * beneath them.
 */
function libpodCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    found.push(dir);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return; // removed meanwhile (another podman's container)
      throw error;
    }
    for (const entry of entries) if (entry.isDirectory()) walk(join(dir, entry.name));
  };
  const hierarchies = [
    CGROUPS,
    ...readdirSync(CGROUPS, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(CGROUPS, entry.name)),
  ];
  for (const dir of hierarchies.map((hierarchy) => join(hierarchy, 'libpod_parent')).filter((dir) => existsSync(dir))) walk(dir);
  return found;
}

/**
 * Podman never removes `libpod_parent` nor conmon's cgroup in it (`libpod_parent/conmon`), and leaves a pod's
 * (`libpod_parent/<pod id>`) in the systemd and cgroup2 hierarchies of a hybrid layout: removes, deepest first, those
 * that were not in `before` (libpodCgroups() at the start). A directory already gone (ENOENT) or still in use (EBUSY:
 * processes or child cgroups, another podman's perhaps) is left.
 */
function removeNewLibpodCgroups(before: string[]): void {
  const known = new Set(before);
  const made = libpodCgroups().filter((dir) => !known.has(dir));
  for (const cgroup of made.sort((a, b) => b.split('/').length - a.split('/').length)) {
    try {
      rmdirSync(cgroup);
    } catch (error) {
      const code = codeOf(error);
      if (code !== 'ENOENT' && code !== 'EBUSY') throw error;
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
  await run('podman', ['--version']).catch((error: unknown) => {
    throw new Error(`podman is needed for this test (scripts/test.sh installs it): ${messageOf(error)}`);
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
    [
      '[storage]',
      `driver = "${options.driver ?? 'overlay'}"`,
      `graphroot = ${JSON.stringify(join(dir, 'storage'))}`,
      `runroot = ${JSON.stringify(join(dir, 'run'))}`,
      '',
    ].join('\n'),
  );
  const envOf = (runtime: Runtime = 'runc') => ({
    CONTAINERS_CONF: join(dir, `containers-${runtime}.conf`),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
  });
  const env = { ...process.env, ...envOf() };
  return {
    dir,
    env: envOf,
    podman: (args) => run('podman', args, env),
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

/**
 * Builds POD_IMAGES in this podman: the runner from the repository's Dockerfile on the bases made from Debian's
 * packages (scripts/docker/make-base-rootfs.sh, cached; as test/docker.test.ts builds it under dockerd), bb_worker's
 * stand-in on top of it (test/fixtures/pod/Containerfile), and a busybox image for the init container, imported
 * from a busybox root. About a minute and a half on 2 cores, most of it the Dockerfile's npm ci and build.
 */
export async function buildPodImages(podman: Podman): Promise<void> {
  // The image is OCI (podman's default): the Dockerfile's HEALTHCHECK is dropped (Kubernetes ignores it).
  await buildRunnerImage(podman.podman, {
    image: POD_IMAGES.runner,
    runtimeBase: 'localhost/mountat-test-pod-base/runtime:local',
    buildBase: 'localhost/mountat-test-pod-base/build:local',
  });

  const context = join(podman.dir, 'stand-in');
  mkdirSync(context);
  copyFileSync('/bin/busybox', join(context, 'busybox'));
  for (const file of ['test/fixtures/pod/Containerfile', 'test/fixtures/pod/worker-stand-in.mjs', 'scripts/make-busybox-root.sh']) {
    copyFileSync(join(repo, file), join(context, file.split('/').pop()!));
  }
  await podman.podman([
    'build',
    '--quiet',
    '--network',
    'none',
    '--build-arg',
    `RUNNER_IMAGE=${POD_IMAGES.runner}`,
    '-t',
    POD_IMAGES.worker,
    '-f',
    join(context, 'Containerfile'),
    context,
  ]);

  const busybox = busyboxRoot();
  const tarball = join(podman.dir, 'busybox.tar');
  await run('tar', ['-C', busybox, '-cf', tarball, '.']);
  removeTree(busybox);
  // An imported image has no configuration: PATH is set so that the init container's command is found.
  await podman.podman(['import', '--quiet', '--change', 'ENV=PATH=/bin:/usr/bin', tarball, POD_IMAGES.busybox]);
  rmSync(tarball);
}
