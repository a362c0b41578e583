// The real podman (Debian's 4.3.1) runs containers with the hooks.d files mountat ships,
// installed as docs/hooks.md tells an operator: copied into a hooks directory with hook.path
// pointing at where mountat is (here: this checkout). Under runc and crun, with --rootfs and
// with an image imported locally: mountat's proc (the container's own PIDs), read-only sysfs
// and tmpfs of the size asked for; afterwards no record, no directory mountat made, and the
// mount table as it was. podman missing is a failure, never a skip: CI installs it
// (scripts/test.sh).
//
// podman is one of the test's own (test/helpers/podman.ts: storage, run state, file locks and
// events in a scratch directory, the vfs driver): another test may use podman at the same time,
// and this one must neither see its containers nor leave any of its own; vfs makes no overlay
// mounts, so the only mounts a comparison of mount tables can find are the runtime's and
// mountat's. The image is 2 MB, so vfs's copy per container costs nothing worth an overlay. The
// hooks.d files get a state directory in that scratch directory too, not the host's /run/mountat.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJson } from './helpers/checked.js';
import { HOOK, listing, RUNTIMES, type Runtime } from './helpers/oci.js';
import { startPodman, type Podman } from './helpers/podman.js';
import { busyboxRoot, removeTree, repo, scratchDir } from './helpers/roots.js';

const IMAGE = 'localhost/mountat-test-hooks-busybox';

let podman: Podman | undefined;
let work: string;
let hooksDir: string;
/** The state directory the installed hooks.d files name: in this test's scratch directory. */
let stateDir: string;

/** podman run's options here; the storage, hooks directory and this machine's ulimits are in podman's configuration. */
function podmanRunArgs(runtime: Runtime): string[] {
  return ['--runtime', runtime, '--network', 'none'];
}

interface PodmanRun {
  status: number | null;
  stdout: string;
  stderr: string;
  tableBefore: string;
  tableAfter: string;
}

/**
 * Runs `inner` (a shell command line; `$@` is `args`) with mount tables taken just before and
 * after, in the namespace podman runs in: this test's own for runc; for crun the cgroup2
 * workaround's (crun refuses this machine's hybrid cgroup layout, so podman runs in a private
 * mount namespace with the cgroup2 mount under /sys/fs/cgroup/unified taken away).
 */
function around(runtime: Runtime, inner: string, args: string[], env: NodeJS.ProcessEnv = {}): PodmanRun {
  const tables = scratchDir('mountat-tables-');
  const snapshotAround = `cat /proc/self/mountinfo > "$T/before"; ${inner}; rc=$?; cat /proc/self/mountinfo > "$T/after"; exit $rc`;
  const command =
    runtime === 'crun'
      ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount /sys/fs/cgroup/unified && ${snapshotAround}`, 'sh', ...args]
      : ['sh', '-c', snapshotAround, 'sh', ...args];
  const result = spawnSync(command[0]!, command.slice(1), {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...podman!.env(runtime), T: tables, ...env },
  });
  const run = {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    tableBefore: readFileSync(join(tables, 'before'), 'utf8'),
    tableAfter: readFileSync(join(tables, 'after'), 'utf8'),
  };
  execFileSync('rm', ['-rf', tables]);
  return run;
}

function podmanRun(runtime: Runtime, args: string[]): PodmanRun {
  return around(runtime, 'podman "$@"', args);
}

function podmanOk(args: string[]): string {
  return execFileSync('podman', args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...podman!.env() } });
}

/** The records in the state dir that name `rootIno` (the rootfs's inode) or container `id`. */
function recordsOf(match: { id?: string; rootIno?: number }): string[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir).filter((name) => {
    if (match.id !== undefined && name === `oci-${match.id}.json`) return true;
    if (match.rootIno === undefined || !name.endsWith('.json')) return false;
    try {
      return readJson<{ root?: { ino?: string } }>(join(stateDir, name)).root?.ino === String(match.rootIno);
    } catch {
      return false;
    }
  });
}

// What the container reports, one `key: value` line each.
const PROBE = [
  'echo "exe: $(readlink /proc/self/exe)"',
  'echo "pid1: $(readlink /proc/1/exe) $(tr "\\0" " " < /proc/1/cmdline)"',
  'echo "pids: $(ls /proc | grep "^[0-9]" | tr "\n" " ")"',
  'echo "sys cpu online: $(cat /sys/devices/system/cpu/online)"',
  'touch /sys/mountat-probe 2>/dev/null && echo "sys: writable" || echo "sys: read-only"',
  'echo "tmp: $(stat -f -c "%b*%S" /tmp) $(df -k /tmp | tail -n 1 | tr -s " " | cut -d " " -f 2)k"',
  'echo "mounts at /proc: $(cut -d " " -f 5 /proc/self/mountinfo | grep -c "^/proc$"), at /sys: $(cut -d " " -f 5 /proc/self/mountinfo | grep -c "^/sys$")"',
  'grep -E " /(proc|sys|tmp) " /proc/self/mountinfo | cut -d " " -f 5- | sed "s/^/mount: /"',
].join('; ');

function report(stdout: string): Record<string, string> {
  const lines = stdout.split('\n').filter((line) => line.includes(': ') && !line.startsWith('mount: '));
  return Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]));
}

const ANNOTATIONS = ['--annotation', '"org.mountat.mounts=proc,sys,tmp"', '--annotation', 'org.mountat.tmp.size=32m'];

beforeAll(async () => {
  // Not a skip: a machine without podman fails here (scripts/test.sh installs it).
  expect(spawnSync('podman', ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^podman version \d/);
  expect(existsSync(HOOK), 'npm run build first').toBe(true);
  podman = await startPodman({ driver: 'vfs' });
  work = podman.dir;
  stateDir = join(work, 'state');
  // Installed as docs/hooks.md says: the shipped hooks.d files, with hook.path where mountat is, in the hooks directory
  // this podman's containers.conf names; and --state-dir this test's, not the host's /run/mountat.
  hooksDir = join(work, 'hooks.d');
  for (const name of readdirSync(join(repo, 'hooks', 'hooks.d')).filter((file) => file.endsWith('.json'))) {
    const hook = readJson<{ hook: { path: string; args: string[] } }>(join(repo, 'hooks', 'hooks.d', name));
    hook.hook.path = HOOK;
    const at = hook.hook.args.indexOf('--state-dir');
    if (at >= 0) hook.hook.args[at + 1] = stateDir;
    expect(
      hook.hook.args.filter((arg) => arg.includes('/run/mountat')),
      name,
    ).toEqual([]);
    writeFileSync(join(hooksDir, name), JSON.stringify(hook, null, 2));
  }
  const image = busyboxRoot();
  const tarball = join(work, 'busybox.tar');
  execFileSync('tar', ['-C', image, '-cf', tarball, '.']);
  removeTree(image);
  podmanOk(['import', '--quiet', tarball, IMAGE]);
}, 120_000);

afterAll(() => {
  if (!podman) return;
  const env = { ...process.env, ...podman.env() };
  spawnSync('podman', ['rm', '--all', '--force'], { encoding: 'utf8', env });
  spawnSync('podman', ['rmi', '--all', '--force'], { encoding: 'utf8', env });
  podman.remove();
});

describe.each(RUNTIMES)('podman --runtime %s with the shipped hooks.d files', (runtime) => {
  it('--rootfs: mountat makes proc, read-only sys and tmp, and leaves the rootfs as a plain podman run does', () => {
    // The same run without mountat's annotation, on a root of its own: what podman itself leaves.
    const plainRoot = busyboxRoot();
    const plain = podmanRun(runtime, ['run', '--rm', ...podmanRunArgs(runtime), '--hooks-dir', hooksDir, '--rootfs', plainRoot, '/bin/true']);
    expect(plain.status, plain.stderr).toBe(0);
    const podmanLeaves = listing(plainRoot).filter((path) => !/^(proc|sys)(\/|$)/.test(path));
    removeTree(plainRoot);

    const root = busyboxRoot();
    const rootIno = Number(execFileSync('stat', ['-c', '%i', root], { encoding: 'utf8' }).trim());
    const cidfile = join(work, `cid-rootfs-${runtime}`);
    const run = podmanRun(runtime, [
      'run',
      '--rm',
      ...podmanRunArgs(runtime),
      '--hooks-dir',
      hooksDir,
      '--cidfile',
      cidfile,
      ...ANNOTATIONS,
      '--rootfs',
      root,
      '/bin/sh',
      '-c',
      PROBE,
    ]);
    expect(run.status, run.stderr).toBe(0);
    // The hooks wrote in the test's state directory (nothing but createContainer's record makes it: readdirSync
    // throws where it is missing), and poststop took the record away.
    expect(readdirSync(stateDir)).toEqual([]);
    expectMountatMounts(run.stdout);
    const id = readFileSync(cidfile, 'utf8').trim();
    expect(recordsOf({ id, rootIno })).toEqual([]);
    expect(listing(root)).toEqual(podmanLeaves);
    expect(run.tableAfter).toBe(run.tableBefore);
    removeTree(root);
  });

  it("an imported image: the same mounts, and the container's rootfs holds nothing of mountat's afterwards", () => {
    const plainName = `mountat-test-hooks-plain-${runtime}`;
    const plain = podmanRun(runtime, ['run', '--name', plainName, ...podmanRunArgs(runtime), '--hooks-dir', hooksDir, IMAGE, '/bin/true']);
    expect(plain.status, plain.stderr).toBe(0);
    const podmanLeaves = rootfsListing(plainName).filter((path) => !/^(proc|sys)(\/|$)/.test(path));
    podmanOk(['rm', plainName]);

    const name = `mountat-test-hooks-${runtime}`;
    const run = podmanRun(runtime, ['run', '--name', name, ...podmanRunArgs(runtime), '--hooks-dir', hooksDir, ...ANNOTATIONS, IMAGE, '/bin/sh', '-c', PROBE]);
    expect(run.status, run.stderr).toBe(0);
    expectMountatMounts(run.stdout);
    const id = podmanOk(['container', 'inspect', '--format', '{{.Id}}', name]).trim();
    expect(recordsOf({ id })).toEqual([]);
    expect(rootfsListing(name)).toEqual(podmanLeaves);
    podmanOk(['rm', name]);
    expect(run.tableAfter).toBe(run.tableBefore);
  });

  it("a bad annotation fails the container with mountat's one line, before anything is mounted", () => {
    const root = busyboxRoot();
    const rootIno = Number(execFileSync('stat', ['-c', '%i', root], { encoding: 'utf8' }).trim());
    const before = listing(root);
    // The precreate stage lets the spec through and the createContainer hook refuses the
    // annotation: runc puts the hook's line into its error; crun writes it only to the file
    // run.oci.hooks.stderr names (docs/hooks.md, "Output").
    const hookStderr = join(work, `hook-stderr-${runtime}`);
    const crunStderr = runtime === 'crun' ? ['--annotation', `run.oci.hooks.stderr=${hookStderr}`] : [];
    const run = podmanRun(runtime, [
      'run',
      '--rm',
      ...podmanRunArgs(runtime),
      '--hooks-dir',
      hooksDir,
      '--annotation',
      '"org.mountat.mounts=proc,bogus"',
      ...crunStderr,
      '--rootfs',
      root,
      '/bin/true',
    ]);
    expect(run.status).not.toBe(0);
    const line = 'mountat-hook: annotation org.mountat.mounts="proc,bogus": unknown mount "bogus" (known: proc, sys, tmp)';
    expect(runtime === 'crun' ? readFileSync(hookStderr, 'utf8') : run.stderr).toContain(line);
    expect(recordsOf({ rootIno })).toEqual([]);
    // podman's own run leaves its mountpoints (dev, etc, proc, run, sys); mountat made nothing.
    expect(listing(root).filter((path) => !before.includes(path) && !/^(dev|etc|proc|run|sys)(\/|$)/.test(path))).toEqual([]);
    expect(listing(root)).not.toContain('tmp/');
    expect(run.tableAfter).toBe(run.tableBefore);
    removeTree(root);
  });
});

/** Every path of a stopped container's rootfs (vfs: `podman mount` is a plain directory). */
function rootfsListing(name: string): string[] {
  const dir = podmanOk(['container', 'mount', name]).trim();
  try {
    return listing(dir);
  } finally {
    podmanOk(['container', 'umount', name]);
  }
}

function expectMountatMounts(stdout: string): void {
  const seen = report(stdout);
  expect(seen.exe, stdout).toBe('/bin/busybox');
  // proc is the container's: pid 1 is its own shell, and it sees only that shell and the few
  // commands of the probe (the host has hundreds of processes, with large PIDs).
  expect(seen.pid1, stdout).toMatch(/^\/bin\/busybox \/bin\/sh -c echo "exe: /);
  const pids = seen.pids!.trim().split(' ').map(Number);
  expect(pids[0], stdout).toBe(1);
  expect(pids.length, stdout).toBeLessThanOrEqual(6);
  expect(Math.max(...pids), stdout).toBeLessThan(50);
  expect(seen['sys cpu online'], stdout).toMatch(/^\d/);
  expect(seen.sys, stdout).toBe('read-only');
  expect(seen.tmp, stdout).toMatch(/^\d+\*\d+ 32768k$/);
  const [blocks, size] = seen.tmp!.split(' ')[0]!.split('*').map(Number);
  expect(blocks! * size!).toBe(32 * 1024 * 1024);
  // One proc and one sysfs: mountat's, not podman's with mountat's stacked on top.
  expect(seen['mounts at /proc'], stdout).toBe('1, at /sys: 1');
  const mounts = stdout.split('\n').filter((line) => line.startsWith('mount: '));
  expect(mounts).toContainEqual(expect.stringMatching(/^mount: \/proc \S+ - proc proc /));
  expect(mounts).toContainEqual(expect.stringMatching(/^mount: \/sys ro,\S* - sysfs sysfs /));
  expect(mounts).toContainEqual(expect.stringMatching(/^mount: \/tmp rw,\S* - tmpfs tmpfs \S*size=32768k/));
}

describe('the podman example of docs/hooks.md', () => {
  it.each(RUNTIMES)('runs as printed (%s), with the hooks directory and storage an operator configures', (runtime) => {
    const page = readFileSync(join(repo, 'docs', 'hooks.md'), 'utf8');
    const block = /<!-- test\/podman\.test\.ts runs this -->\n```sh\n([\s\S]*?)```/.exec(page)?.[1];
    expect(block, 'docs/hooks.md has the podman example test/podman.test.ts runs').toBeDefined();
    expect(block).toMatch(/^podman run /);
    // What a machine's configuration, not the command, carries: containers.conf names the hooks
    // directory (the documented alternative to copying into /etc/containers/oci/hooks.d), the
    // runtime and this machine's ulimits; storage.conf this test's storage (test/helpers/podman.ts
    // writes both; around() names the containers.conf with `runtime`).
    const root = busyboxRoot();
    const run = around(runtime, 'sh -c "$EXAMPLE_COMMAND"', [], { EXAMPLE_COMMAND: block, ROOT: root });
    expect(run.status, run.stderr).toBe(0);
    const shown = /<!-- test\/podman\.test\.ts runs this -->\n```sh\n[\s\S]*?```\n[^`]*```\n([\s\S]*?)```/.exec(page)?.[1];
    expect(run.stdout).toBe(shown);
    expect(run.tableAfter).toBe(run.tableBefore);
    expect(listing(root).filter((path) => /^(proc|sys|tmp)(\/|$)/.test(path))).toEqual([]);
    removeTree(root);
  });
});
