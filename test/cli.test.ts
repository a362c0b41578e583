// The `mountat` command as an operator runs it: exit codes, one-line errors, nothing left.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mountat, mountatArgv } from './helpers/cli.js';
import { busyboxRoot, defaultPlanMountCount, firmwareTableHere, mountTable, mountsUnder, removeTree, repo, scratchDir } from './helpers/roots.js';

let root: string;
let state: string;
beforeEach(() => {
  root = busyboxRoot();
  state = scratchDir('mountat-state-');
});
afterEach(() => {
  removeTree(root);
  removeTree(state);
});

/** `mountat exec` of `command` in the root, recorded in the test's state directory. */
const execInRoot = (...command: string[]) => mountat(['exec', '--root', root, '--state-dir', state, '--', ...command]);

describe('mountat exec', () => {
  it('runs the command chrooted with proc, sys and tmp, and exits with its status', () => {
    const before = mountTable();
    const result = execInRoot('/bin/sh', '-c', 'readlink /proc/self/exe; ls /sys/kernel >/tmp/k && test -s /tmp/k && echo sys-ok; pwd; exit 7');
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('/bin/busybox\nsys-ok\n/\n');
    expect(result.status).toBe(7);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    expect(readdirSync(state)).toEqual([]);
  });

  it("hides the host's firmware tables and every user's key quota from a root command, through the starter", () => {
    // What the covers hide, readable on the host as root: ACPI's DSDT (or what this machine's firmware has), uid 0's key count.
    const table = firmwareTableHere()!;
    expect(readFileSync(`/sys/firmware/${table}`).length).toBeGreaterThan(0);
    expect(readFileSync('/proc/key-users', 'utf8')).toMatch(/^\s*0:/m);
    const before = mountTable();
    const result = execInRoot(
      '/bin/sh',
      '-c',
      `id -u; ls -A /sys/firmware | wc -l; cat /sys/firmware/${table}; wc -c < /proc/key-users; mkdir /sys/firmware/x; cat /sys/devices/system/cpu/online`,
    );
    expect(result.stdout.split('\n').map((line) => line.trim())).toEqual(['0', '0', '0', readFileSync('/sys/devices/system/cpu/online', 'utf8').trim(), '']);
    expect(result.stderr).toBe(
      `cat: can't open '/sys/firmware/${table}': No such file or directory\nmkdir: can't create directory '/sys/firmware/x': Read-only file system\n`,
    );
    expect(result.status).toBe(0);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('starts in --cwd inside the root', () => {
    const result = mountat(['exec', '--root', root, '--state-dir', state, '--cwd', '/usr/bin', '--', '/bin/pwd']);
    expect(result.stdout).toBe('/usr/bin\n');
    expect(result.status).toBe(0);
  });

  it('unmounts when it is signalled while the command runs', async () => {
    const before = mountTable();
    const child = spawn(
      process.execPath,
      [join(repo, 'bin', 'mountat.js'), 'exec', '--root', root, '--state-dir', state, '--', '/bin/sh', '-c', 'echo started; exec sleep 30'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect(mountsUnder(root)).toHaveLength(defaultPlanMountCount());
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
    expect(code).toBe(128 + 15);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('unmounts when the command does not exist in the root', () => {
    const before = mountTable();
    const result = mountat(['exec', '--root', root, '--state-dir', state, '--', '/no/such/program']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/no\/such\/program/);
    expect(mountTable()).toBe(before);
  });

  it('refuses a bad plan file in one line, touching nothing', () => {
    const before = mountTable();
    const plan = join(state, 'plan.json');
    writeFileSync(plan, JSON.stringify({ mounts: [{ target: '/proc', kind: 'proc' }] }));
    const result = mountat(['exec', '--root', root, '--plan', plan, '--state-dir', state, '--', '/bin/true']);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`mountat: plan file ${plan}: plan.mounts[0]: target "/proc" is absolute; give it relative to the root, e.g. "proc"\n`);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('names a plan file that is not JSON or is missing', () => {
    const plan = join(state, 'plan.json');
    writeFileSync(plan, '{ mounts: ');
    expect(mountat(['mount', '--root', root, '--plan', plan, '--state-dir', state]).stderr).toMatch(
      /^mountat: plan file .*plan\.json: not valid JSON \(.*\)\n$/,
    );
    expect(mountat(['mount', '--root', root, '--plan', join(state, 'none.json'), '--state-dir', state]).stderr).toMatch(
      /^mountat: plan file .*none\.json: ENOENT\n$/,
    );
  });

  it('names a missing root and a root that is a file', () => {
    const missing = mountat(['exec', '--root', join(root, 'nope'), '--', '/bin/true']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`mountat: open root \`${join(root, 'nope')}\`: openat2: ENOENT — does not exist\n`);
    const file = mountat(['mount', '--root', join(root, 'bin', 'busybox'), '--state-dir', state]);
    expect(file.stderr).toMatch(/^mountat: open root `.*busybox`: openat2: ENOTDIR/);
  });

  it('runs the command at nice 10 by default, at --nice N where given, and refuses one out of 0-19 in one line', () => {
    // Field 19 of /proc/self/stat is the nice value.
    const niceOf = (...flags: string[]) =>
      mountat(['exec', '--root', root, '--state-dir', state, ...flags, '--', '/bin/cut', '-d', ' ', '-f19', '/proc/self/stat']);
    expect(niceOf()).toMatchObject({ stdout: '10\n', stderr: '', status: 0 });
    expect(niceOf('--nice', '4')).toMatchObject({ stdout: '4\n', stderr: '', status: 0 });
    expect(niceOf('--nice', '0')).toMatchObject({ stdout: '0\n', stderr: '', status: 0 });
    const bad = niceOf('--nice', '20');
    expect(bad.stderr).toBe('mountat: --nice "20": an integer from 0 to 19\nrun `mountat help` for usage\n');
    expect(bad.status).toBe(2);
    // The starter checks its own command line too.
    for (const value of ['20', '-1', '1x', '']) {
      const starter = spawnSync(join(repo, 'dist', 'mountat-action'), ['--nice', value, '--', 'true'], { encoding: 'utf8' });
      expect([starter.stderr, starter.status]).toEqual(['mountat-action: bad --nice\n', 126]);
    }
    // An empty number is no number (it once read as 0: uid 0).
    const emptyUid = spawnSync(join(repo, 'dist', 'mountat-action'), ['--uid', '', '--', 'true'], { encoding: 'utf8' });
    expect([emptyUid.stderr, emptyUid.status]).toEqual(['mountat-action: bad --uid\n', 126]);
    expect(readdirSync(state)).toEqual([]);
  });

  it('reports usage mistakes with exit code 2', () => {
    expect(mountat(['exec', '--root', root]).status).toBe(2);
    expect(mountat(['exec', '--root', root]).stderr).toMatch(/^mountat: exec needs a command after --\n/);
    expect(mountat(['mount']).stderr).toMatch(/^mountat: --root DIR is required\n/);
    expect(mountat(['mount', '--bogus']).status).toBe(2);
    expect(mountat(['frobnicate']).stderr).toMatch(/^mountat: unknown verb "frobnicate"/);
    expect(mountat(['exec', '--root', root, '--cwd', 'relative', '--', '/bin/true']).stderr).toMatch(/--cwd relative: give it as an absolute path/);
    expect(existsSync(join(root, 'proc'))).toBe(false);
  });
});

describe('mountat mount and umount: one owner of the mounts and their record', () => {
  it('mounts nothing when the record cannot be written (the state directory is read-only)', () => {
    const before = mountTable();
    const readOnly = join(state, 'ro');
    mkdirSync(readOnly);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'tmpfs', readOnly]);
    try {
      const result = mountat(['mount', '--root', root, '--state-dir', readOnly]);
      expect(result.stderr).toMatch(/^mountat: .*EROFS.*\n$/);
      expect(result.status).toBe(1);
      expect(mountsUnder(root)).toEqual([]);
      expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    } finally {
      execFileSync('umount', [readOnly]);
    }
    expect(mountTable()).toBe(before);
  });

  it('exec refuses a root that `mountat mount` holds, and leaves its mounts and record alone', () => {
    const mounted = mountat(['mount', '--root', root, '--state-dir', state]);
    expect(mounted.status).toBe(0);
    const held = mountTable();
    const [record] = readdirSync(state);
    // Another plan, at other targets: it would attach, and its record take the same key.
    const planDir = scratchDir('mountat-plan-');
    const plan = join(planDir, 'plan.json');
    writeFileSync(plan, JSON.stringify({ mounts: [{ target: 'scratch', kind: 'tmpfs' }] }));
    const result = mountat(['exec', '--root', root, '--state-dir', state, '--plan', plan, '--', '/bin/true']);
    removeTree(planDir);
    expect(result.stderr).toBe(`mountat: root ${root} already has mounts recorded in ${join(state, record!)}; run \`mountat umount --root ${root}\` first\n`);
    expect(result.status).toBe(1);
    expect(mountTable()).toBe(held);
    expect(readdirSync(state)).toEqual([record]);
    const unmounted = mountat(['umount', '--root', root, '--state-dir', state]);
    expect(unmounted.status).toBe(0);
    expect(mountsUnder(root)).toEqual([]);
    expect(readdirSync(state)).toEqual([]);
  });
});

describe('the state directory', () => {
  it('is --state-dir, else $MOUNTAT_STATE_DIR: mount and umount find the record where the command line says', () => {
    const other = scratchDir('mountat-state-other-');
    try {
      const env = { ...process.env, MOUNTAT_STATE_DIR: state };
      expect(mountat(['mount', '--root', root], { env }).status).toBe(0);
      const [record] = readdirSync(state);
      expect(record).toMatch(/^root-\d+-\d+-\d+\.json$/);
      // --state-dir wins over the variable: there, nothing is recorded for this root.
      expect(mountat(['umount', '--root', root, '--state-dir', other], { env }).stdout).toBe(`nothing recorded for ${root}; nothing to unmount\n`);
      expect(mountsUnder(root)).toHaveLength(defaultPlanMountCount());
      const unmounted = mountat(['umount', '--root', root], { env });
      expect(unmounted.status).toBe(0);
      expect(mountsUnder(root)).toEqual([]);
      expect(readdirSync(state)).toEqual([]);
    } finally {
      removeTree(other);
    }
  });
});

describe('mountat doctor', () => {
  it('passes on this machine and shows the propagation of a directory', () => {
    const result = mountat(['doctor', '--dir', root]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^ok {3}syscall openat2$/m);
    expect(result.stdout).toMatch(/^ok {3}syscall mount_setattr$/m);
    expect(result.stdout).toMatch(/^ok {3}CAP_SYS_ADMIN is effective$/m);
    expect(result.stdout).toMatch(
      new RegExp(`^ok {3}${root} is on \\S+ mounted at \\S+, propagation private \\(see docs/operations\\.md#t-propagation\\)$`, 'm'),
    );
    expect(result.stdout).toMatch(/this host can run mountat\n$/);
    expect(mountsUnder(root)).toEqual([]);
  });

  it('refuses a --dir that is not there as a mistake in the call, not a fault of the host', () => {
    const missing = join(root, 'no-such-dir');
    const result = mountat(['doctor', '--dir', missing]);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toBe(`mountat: --dir ${JSON.stringify(missing)}: does not exist (ENOENT)`);
    expect(result.stderr).not.toMatch(/cannot run mountat/);
    const file = join(root, 'bin', 'busybox');
    expect(mountat(['doctor', '--dir', file]).stderr.split('\n')[0]).toBe(`mountat: --dir ${JSON.stringify(file)}: is not a directory`);
  });

  it('fails with advice when the process lacks CAP_SYS_ADMIN', () => {
    // setpriv drops the capability from the inheritable and bounding sets while staying root,
    // so the exec'd node has it in no set.
    const result = spawnSync('setpriv', ['--inh-caps', '-sys_admin', '--bounding-set', '-sys_admin', ...mountatArgv('doctor')], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^fail CAP_SYS_ADMIN is not effective — run as root or add CAP_SYS_ADMIN.* \(see docs\/operations\.md#t-eperm\)$/m);
    expect(result.stdout).toMatch(/^fail a trial tmpfs cannot be created: fsopen: EPERM/m);
  });
});

describe('mountat doctor on cgroups', () => {
  /** doctor's cgroup lines, run under `sh -c SCRIPT` in a mount namespace of its own (SCRIPT then execs doctor). */
  const cgroupLines = (script: string) => {
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${script} && exec "$@"`, 'sh', ...mountatArgv('doctor')], {
      encoding: 'utf8',
    });
    return { status: result.status, stderr: result.stderr, lines: result.stdout.split('\n').filter((line) => /cgroup|^(ok|warn) {1,3}limits/.test(line)) };
  };

  it("shows this machine's hybrid layout, a cgroup made in every tree, and every limit enforceable", () => {
    // CI's layout: the controllers on v1, a v2 tree at /sys/fs/cgroup/unified without them (docs/cgroups.md).
    const { status, lines } = cgroupLines('true');
    expect(status).toBe(0);
    expect(lines[0]).toBe('ok   cgroups: hybrid (a cgroup v2 tree beside v1 hierarchies); controllers: pids v1, memory v1, cpu v1, io v1');
    // Below this process's own cgroup in each: the v2 tree's, and pids', memory's, cpu's and blkio's v1 hierarchies.
    expect(lines[1]).toMatch(
      /^ok {3}the runner can make its actions' cgroups below \/sys\/fs\/cgroup\/unified\S*, \/sys\/fs\/cgroup\/pids\S*, \/sys\/fs\/cgroup\/memory\S*, \/sys\/fs\/cgroup\/cpu\S*, \/sys\/fs\/cgroup\/blkio\S* \(a trial cgroup made and removed in each\)$/,
    );
    expect(lines.slice(2)).toEqual([
      'ok   limits can be enforced: pids, memoryBytes, cpu; an OOM kill ends the whole action (v1 has no memory.oom.group: the runner kills the rest)',
    ]);
  });

  it('warns, naming the fix, where no cgroup file system is mounted, and still passes the host', () => {
    const { status, lines } = cgroupLines('umount --recursive --lazy /sys/fs/cgroup && mount -t tmpfs none /sys/fs/cgroup');
    expect(status).toBe(0);
    expect(lines).toEqual([
      'warn cgroups: none (no cgroup file system is mounted here); controllers: pids none, memory none, cpu none, io none',
      "warn the runner cannot make its actions' cgroups: no cgroup filesystem is mounted where this process can see it — mount the cgroup file system (cgroup2 at /sys/fs/cgroup); a container gets it from its engine (see docs/operations.md#t-cgroups)",
      'warn limits that cannot be enforced here: pids (no pids controller), memoryBytes (no memory controller), cpu (no cpu controller) — a runner configured with one of them refuses to start; without, it runs and says once what it cannot do (the default pids limit included) (see docs/operations.md#t-cgroups)',
    ]);
  });

  it('warns where the cgroup mounts are read-only, as in a container, and names the remount the runner image makes', () => {
    // Read-only as Docker, podman and Kubernetes mount them: the mount's own flag, in this namespace only.
    const readOnly = 'for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do mount -o remount,bind,ro $m || exit 1; done';
    const { status, lines } = cgroupLines(readOnly);
    expect(status).toBe(0);
    expect(lines[0]).toBe('ok   cgroups: hybrid (a cgroup v2 tree beside v1 hierarchies); controllers: pids v1, memory v1, cpu v1, io v1');
    expect(lines[1]).toMatch(
      /^warn the runner cannot make its actions' cgroups: unified: cannot make a cgroup in \/sys\/fs\/cgroup\/unified\S*: .*EROFS.*; pids: .*EROFS.* — the cgroup file system is mounted read-only here \(a container's default\): remount it writable in this mount namespace, as the runner image's entrypoint does/,
    );
    expect(lines[2]).toBe(
      'warn limits that cannot be enforced here: pids (no cgroup can be made in its pids hierarchy), memoryBytes (no cgroup can be made in its memory hierarchy), cpu (no cgroup can be made in its cpu hierarchy) — a runner configured with one of them refuses to start; without, it runs and says once what it cannot do (the default pids limit included) (see docs/operations.md#t-cgroups)',
    );
  });
});

describe('mountat doctor on user namespaces', () => {
  /** doctor's user-namespace lines (and its verdict): `unshare ARGS… doctor`, in a mount namespace where SCRIPT ran first. */
  const usernsLines = (unshareArgs: string[], script = 'true') => {
    const argv = unshareArgs.length > 0 ? ['unshare', ...unshareArgs, ...mountatArgv('doctor')] : mountatArgv('doctor');
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${script} && exec "$@"`, 'sh', ...argv], { encoding: 'utf8' });
    const lines = result.stdout
      .split('\n')
      .filter((line) => /user namespace|fully visible|proc is masked|sysfs|can start actions|fail every action/.test(line));
    return { status: result.status, stderr: result.stderr, lines, last: result.stdout.trim().split('\n').at(-1) };
  };
  const inUserns = ['--user', '--map-root-user', '--mount', '--pid', '--fork'];
  // --map-root-user maps uid 0 to the caller's uid, 0 here: the map is "0 0 1", not the host's identity of every uid.
  const notHosts =
    "ok   user namespace: not the host's, uid map 0 0 1 (capabilities held here hold only in it; uid 0 here is uid 0 on the host) (see docs/operations.md#t-userns)";
  const canStart = (sysfs: string) =>
    `ok   the runner and \`mountat exec\` can start actions here, and the OCI hooks mount proc, ${sysfs} and tmpfs; runCommandsAs must name ids the uid map maps, and cgroup limits need a cgroup delegated to this namespace (else the runner runs without, saying so once) (see docs/operations.md#t-userns)`;

  it("says it is in the host's user namespace, and nothing more, on the host", () => {
    const { status, lines } = usernsLines([]);
    expect(status).toBe(0);
    expect(lines).toEqual(["ok   user namespace: the host's (capabilities held here are the host's; an escaped action would be a uid of the host)"]);
  });

  it('in a user namespace with its own network namespace: proc and sysfs both mountable', () => {
    const { status, lines, last } = usernsLines([...inUserns, '--net', '--mount-proc']);
    expect(status).toBe(0);
    expect(lines).toEqual([
      notHosts,
      'ok   /proc is fully visible here: a new proc can be mounted (a trial made and dissolved)',
      'ok   sysfs can be mounted here (the network namespace belongs to this user namespace)',
      canStart('sysfs'),
    ]);
    expect(last).toBe('this host can run mountat');
  });

  it("without a network namespace of its own: sysfs refused, the container's /sys bound instead", () => {
    const { status, lines } = usernsLines([...inUserns, '--mount-proc']);
    expect(status).toBe(0);
    expect(lines).toEqual([
      notHosts,
      'ok   /proc is fully visible here: a new proc can be mounted (a trial made and dissolved)',
      "warn a new sysfs is refused here (the network namespace belongs to another user namespace): the container's /sys will be bound read-only instead — give the container a network namespace of its own, made with its user namespace (pods and `podman run` without --network host do) (see docs/operations.md#t-userns)",
      canStart('sysfs (as a bind of /sys)'),
    ]);
  });

  it('over a masked /proc (covers made outside the user namespace, as an engine makes them): proc refused, naming the fix', () => {
    // Mounts made by a more privileged namespace are locked in the user namespace's copy: the kernel then refuses a new
    // proc there (mount_too_revealing), as in a container with the engine's default masked paths.
    const mask = 'mount --bind /dev/null /proc/keys && mount --bind -o ro /proc/sys /proc/sys';
    const { status, lines, last } = usernsLines([...inUserns, '--net'], mask);
    expect(status).toBe(0);
    const unmask = '(podman --security-opt unmask=ALL; Kubernetes securityContext.procMount: Unmasked, with hostUsers: false)';
    expect(lines).toEqual([
      notHosts,
      `warn /proc is masked here (2 mounts over its entries: /proc/keys, /proc/sys): the kernel refuses a new proc in this user namespace — run the container with an unmasked /proc ${unmask} (see docs/operations.md#t-userns)`,
      'ok   sysfs can be mounted here (the network namespace belongs to this user namespace)',
      `warn the runner and \`mountat exec\` fail every action here (each mounts a new proc), and so does an OCI hook whose plan has proc — unmask /proc ${unmask} (see docs/operations.md#t-userns)`,
    ]);
    // Mounting and the hooks without proc still work: a warning, not a failure.
    expect(last).toBe('this host can run mountat');
  });
});

describe('the troubleshooting entries doctor points at', () => {
  it('exist', () => {
    const guide = readFileSync(join(repo, 'docs', 'operations.md'), 'utf8');
    const doctor = readFileSync(join(repo, 'src', 'cli', 'doctor.ts'), 'utf8');
    const anchors = [...doctor.matchAll(/\$\{TROUBLESHOOTING\}([a-z-]+)/g)].map((match) => match[1]);
    expect(anchors.length).toBeGreaterThan(1);
    for (const anchor of anchors) expect(guide, anchor).toContain(`<a id="t-${anchor}"></a>`);
  });
});
