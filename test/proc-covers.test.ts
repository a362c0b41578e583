// A hardened proc and a hardened sysfs (the default): their entries that reach the whole host
// covered read-only or masked beneath the proc or sysfs mount itself, recorded, taken off with
// it, and all rolled back when a cover fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attach, defaultPlan, detach, MountStock, parsePlan, PROC_COVERS, SYSFS_COVERS, type AttachedMount, type Cover } from '../src/mounts/index.js';
import { parseJson } from './helpers/checked.js';
import {
  busyboxRoot,
  coverPoints,
  coversHere,
  firmwareTableHere,
  mountTable,
  mountsUnder,
  openDir,
  procCoverPoints,
  procCoversHere,
  removeTree,
  repo,
  runInRoot,
} from './helpers/roots.js';

let root: string;
beforeEach(() => {
  root = busyboxRoot();
});
afterEach(() => removeTree(root));

/** mountinfo lines by mount point: "id parent root options - fstype source superoptions". */
function mountsByPoint(): Map<string, { id: string; parent: string; options: string; fsType: string }> {
  const byPoint = new Map<string, { id: string; parent: string; options: string; fsType: string }>();
  for (const line of mountTable().split('\n').filter(Boolean)) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    byPoint.set(fields[4]!, { id: fields[0]!, parent: fields[1]!, options: fields[5]!, fsType: fields[dash + 1]! });
  }
  return byPoint;
}

/** Each recorded cover of `mount` with its mountinfo line, checked to be a submount of it with the ids recorded. */
function coverLines(mount: AttachedMount): Array<{ cover: Cover; line: { options: string; fsType: string } }> {
  const table = mountsByPoint();
  return (mount.covers ?? []).map((cover) => {
    const line = table.get(`${root}/${cover.path}`)!;
    expect(line.id).toBe(cover.mountId);
    expect(line.parent).toBe(mount.mountId);
    expect(cover.uniqueMountId).toMatch(/^\d+$/);
    return { cover, line };
  });
}

describe('a hardened proc', () => {
  it("covers what this kernel's proc has, each a read-only submount of the proc, recorded by id", () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    try {
      const proc = attachment.mounts[0]!;
      const here = procCoversHere();
      // This kernel lacks some (sysrq-trigger, kcore here): they are skipped, not an error.
      expect(here.length).toBeLessThan(PROC_COVERS.length);
      expect(proc.covers?.map((cover) => cover.path)).toEqual(here.map((name) => `proc/${name}`));
      expect(mountsUnder(root)).toEqual([
        `${root}/proc`,
        ...procCoverPoints(`${root}/proc`),
        `${root}/sys`,
        ...coverPoints('sysfs', `${root}/sys`),
        `${root}/tmp`,
      ]);
      for (const { cover, line } of coverLines(proc)) {
        const spec = PROC_COVERS.find((s) => `proc/${s.name}` === cover.path)!;
        expect(cover.how).toBe(spec.how);
        expect(line.options.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'noexec']));
        // /dev/null must stay a device; everything else is nodev as proc is.
        expect(line.options.split(',').includes('nodev')).toBe(spec.how === 'readonly' || spec.directory);
        expect(line.fsType).toBe(spec.how === 'readonly' ? 'proc' : spec.directory ? 'tmpfs' : 'devtmpfs');
      }
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('keeps a root action from writing sysctls or reading the masked files, and leaves the rest of proc alone', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    try {
      // As real root with every capability: read-only is a property of the mount, not a permission.
      const write = runInRoot(root, ['/bin/sh', '-c', 'echo 1 > /proc/sys/vm/drop_caches']);
      expect(write.status).not.toBe(0);
      expect(write.stderr).toMatch(/Read-only file system/);
      const read = runInRoot(root, [
        '/bin/sh',
        '-c',
        'wc -c < /proc/timer_list; wc -c < /proc/keys; wc -c < /proc/key-users; wc -c < /proc/interrupts; ls -A /proc/acpi | wc -l; cat /proc/sys/kernel/ostype; readlink /proc/self/exe',
      ]);
      expect(read.stderr).toBe('');
      expect(read.stdout.split('\n').map((l) => l.trim())).toEqual(['0', '0', '0', '0', '0', 'Linux', '/bin/busybox', '']);
      // What the masks hide: uid 0's key count and quota ("0: 9 8/8 3/1000000 40/25000000"), the thermal events.
      expect(readFileSync('/proc/timer_list', 'utf8')).not.toBe('');
      expect(readFileSync('/proc/key-users', 'utf8')).toMatch(/^\s*0:/m);
      expect(readFileSync('/proc/interrupts', 'utf8')).toMatch(/CPU0/);
      expect(statSync(join(root, 'proc', 'timer_list')).rdev).toBe(statSync('/dev/null').rdev);
      // Absent from this kernel, hence not covered: nothing to read either way.
      expect(existsSync(join(root, 'proc', 'kcore'))).toBe(existsSync('/proc/kcore'));
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('covers nothing, at the cost of lookups only, under subset=pid', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'proc', kind: 'proc', options: { subset: 'pid' } }] }));
    try {
      expect(attachment.mounts[0]?.covers).toEqual([]);
      expect(mountsUnder(root)).toEqual([`${root}/proc`]);
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('comes off with its covers in one lazy unmount, and the report lists them', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(
      rootFd,
      parsePlan({
        mounts: [
          { target: 'a/proc', kind: 'proc' },
          { target: 'tmp', kind: 'tmpfs' },
        ],
      }),
    );
    const report = detach(rootFd, attachment);
    expect(report.detached).toEqual(['tmp', 'a/proc']);
    expect(report.covers).toEqual(procCoversHere().map((name) => `a/proc/${name}`));
    expect(report.problems).toEqual([]);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    // Again: nothing is there, so no cover is said to have gone.
    const again = detach(rootFd, attachment);
    expect(again.notMounted).toEqual(['tmp', 'a/proc']);
    expect(again.covers).toBeUndefined();
  });
});

describe('a hardened sysfs', () => {
  const firmwareTable = firmwareTableHere()!;

  it("masks what this kernel's sysfs has of its list, each an empty read-only tmpfs submount of the sysfs, recorded by id", () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    try {
      const sys = attachment.mounts[1]!;
      expect(sys.kind).toBe('sysfs');
      // firmware here; powercap only with a RAPL driver (absent from this VM: skipped, not an error).
      const here = coversHere('sysfs');
      expect(here).toContain('firmware');
      expect(sys.covers?.map((cover) => cover.path)).toEqual(here.map((name) => `sys/${name}`));
      for (const { cover, line } of coverLines(sys)) {
        expect(cover.how).toBe(SYSFS_COVERS.find((s) => `sys/${s.name}` === cover.path)!.how);
        expect(line.options.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
        expect(line.fsType).toBe('tmpfs');
        expect(readdirSync(join(root, cover.path))).toEqual([]);
      }
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('keeps a root action from reading the firmware tables, or writing there, and leaves the rest of sysfs alone', () => {
    // What the mask hides: readable through the host's sysfs, as root.
    expect(firmwareTable).toBeDefined();
    expect(readFileSync(`/sys/firmware/${firmwareTable}`).length).toBeGreaterThan(0);
    using rootFd = openDir(root);
    const attachment = attach(rootFd, defaultPlan());
    try {
      const firmware = runInRoot(root, ['/bin/sh', '-c', `ls -A /sys/firmware | wc -l; cat /sys/firmware/${firmwareTable}`]);
      expect(firmware.stdout.trim()).toBe('0');
      expect(firmware.stderr).toMatch(/No such file or directory/);
      expect(firmware.status).not.toBe(0);
      // The cover itself is read-only (not only the sysfs under it): root cannot fill it either.
      const write = runInRoot(root, ['/bin/sh', '-c', 'mkdir /sys/firmware/acpi']);
      expect(write.stderr).toMatch(/Read-only file system/);
      expect(() => mkdirSync(join(root, 'sys', 'firmware', 'x'))).toThrow(/EROFS/);
      const rest = runInRoot(root, ['/bin/sh', '-c', 'cat /sys/devices/system/cpu/online; ls /sys/kernel/mm | grep -c .']);
      expect(rest.stderr).toBe('');
      expect(rest.stdout.split('\n')[0]).toBe(readFileSync('/sys/devices/system/cpu/online', 'utf8').trim());
      expect(Number(rest.stdout.split('\n')[1])).toBe(readdirSync('/sys/kernel/mm').length);
    } finally {
      detach(rootFd, attachment);
    }
  });

  it('comes off with its covers in one lazy unmount, and the report lists them', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'a/sys', kind: 'sysfs' }] }));
    expect(mountsUnder(root)).toEqual([`${root}/a/sys`, ...coverPoints('sysfs', `${root}/a/sys`)]);
    const report = detach(rootFd, attachment);
    expect(report.detached).toEqual(['a/sys']);
    expect(report.covers).toEqual(coversHere('sysfs').map((name) => `a/sys/${name}`));
    expect(report.problems).toEqual([]);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('fails whole wherever it runs out of fds, a cover included, and leaves no mount and no directory', () => {
    // EMFILE from the kernel at each step in turn: all but 0, 1, 2, … fds in use until it succeeds.
    const fixture = join(repo, 'test', 'fixtures', 'attach-out-of-fds.mjs');
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'prlimit', '--nofile=256:256', process.execPath, fixture, root], {
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    const attempts = parseJson<
      Array<{
        error?: string;
        rollbackProblems?: string[];
        tableSame?: boolean;
        entries?: string[];
        covers?: string[];
        covered?: string[];
        tableAfterDetach?: boolean;
      }>
    >(result.stdout);
    const failed = attempts.slice(0, -1);
    expect(failed.map((attempt) => attempt.error)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^mount sysfs on `sys`: \w+: EMFILE/),
        expect.stringMatching(/^cover `sys\/firmware` masked: \w+: EMFILE/),
      ]),
    );
    for (const attempt of failed) expect(attempt).toMatchObject({ rollbackProblems: [], tableSame: true, entries: ['bin', 'usr'] });
    expect(attempts.at(-1)).toMatchObject({ covers: coversHere('sysfs').map((name) => `sys/${name}`), covered: [], tableAfterDetach: true });
  });
});

describe('made ahead (a stock, as the runner fills it while an action runs)', () => {
  const openFds = () => readdirSync('/proc/self/fd').length;

  it("attaches the sysfs made ahead, its covers on it, and proc's masked covers made ahead: the same mounts, recorded by their own ids", () => {
    const plan = defaultPlan();
    using stock = new MountStock();
    stock.fill(plan);
    // One sysfs (its firmware cover on it) and a source for each of proc's masked names, present here or not.
    expect(stock.size).toBe(1 + PROC_COVERS.filter((spec) => spec.how === 'masked').length);
    // Made ahead, detached: nothing of it is in the mount table.
    expect(mountsUnder(root)).toEqual([]);
    using rootFd = openDir(root);
    const attachment = attach(rootFd, plan, { stock });
    try {
      // Taken: the sysfs and the masked covers present here; what this kernel's proc lacks stays.
      const maskedHere = procCoversHere().filter((name) => PROC_COVERS.find((spec) => spec.name === name)!.how === 'masked');
      expect(stock.size).toBe(PROC_COVERS.filter((spec) => spec.how === 'masked').length - maskedHere.length);
      // mountinfo lists mounts by id here, and those made ahead have the lower ids: compared as sets.
      expect(mountsUnder(root).sort()).toEqual(
        [`${root}/proc`, ...procCoverPoints(`${root}/proc`), `${root}/sys`, ...coverPoints('sysfs', `${root}/sys`), `${root}/tmp`].sort(),
      );
      const [proc, sys] = [attachment.mounts[0]!, attachment.mounts[1]!];
      expect(proc.covers?.map((cover) => cover.path)).toEqual(procCoversHere().map((name) => `proc/${name}`));
      expect(sys.covers?.map((cover) => cover.path)).toEqual(coversHere('sysfs').map((name) => `sys/${name}`));
      // The ids recorded are the mounts' own (coverLines checks each against mountinfo), and sysfs's too.
      for (const { cover, line } of [...coverLines(proc), ...coverLines(sys)]) {
        const spec = [...PROC_COVERS, ...SYSFS_COVERS].find((s) => cover.path.endsWith(`/${s.name}`))!;
        expect(line.options.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'noexec']));
        expect(line.fsType).toBe(spec.how === 'readonly' ? 'proc' : spec.directory ? 'tmpfs' : 'devtmpfs');
      }
      expect(mountsByPoint().get(`${root}/sys`)?.id).toBe(sys.mountId);
      // And they hold as made on the spot: a root action reads nothing masked, writes nothing read-only.
      const action = runInRoot(root, [
        '/bin/sh',
        '-c',
        'wc -c < /proc/keys; wc -c < /proc/timer_list; ls -A /proc/acpi | wc -l; ls -A /sys/firmware | wc -l; mkdir /sys/firmware/x 2>&1; echo 1 > /proc/sys/vm/drop_caches',
      ]);
      expect(
        action.stdout
          .split('\n')
          .slice(0, 4)
          .map((l) => l.trim()),
      ).toEqual(['0', '0', '0', '0']);
      expect(action.stdout + action.stderr).toMatch(/Read-only file system[\s\S]*Read-only file system/);
    } finally {
      detach(rootFd, attachment);
    }
    expect(mountsUnder(root)).toEqual([]);
  });

  it('is taken from only where it has something, filled again, and lets go of all it holds', () => {
    const plan = defaultPlan();
    const fds = openFds();
    const stock = new MountStock();
    // Empty: attach makes everything as without one.
    {
      using rootFd = openDir(root);
      const attachment = attach(rootFd, plan, { stock });
      expect(attachment.mounts[1]!.covers?.map((cover) => cover.path)).toEqual(coversHere('sysfs').map((name) => `sys/${name}`));
      detach(rootFd, attachment);
    }
    stock.fill(plan);
    const full = stock.size;
    // Filled again, nothing more is made.
    stock.fill(plan);
    expect(stock.size).toBe(full);
    expect(openFds()).toBe(fds + full);
    stock[Symbol.dispose]();
    expect(stock.size).toBe(0);
    expect(openFds()).toBe(fds);
    // Disposed, it makes nothing more.
    stock.fill(plan);
    expect(stock.size).toBe(0);
    expect(mountsUnder(root)).toEqual([]);
  });

  it('keeps nothing for an unhardened sysfs but the sysfs, and nothing for an unhardened proc', () => {
    const plan = parsePlan({
      mounts: [
        { target: 'proc', kind: 'proc', hardened: false },
        { target: 'sys', kind: 'sysfs', hardened: false },
      ],
    });
    using stock = new MountStock();
    stock.fill(plan);
    expect(stock.size).toBe(1);
    using rootFd = openDir(root);
    const attachment = attach(rootFd, plan, { stock });
    try {
      expect(stock.size).toBe(0);
      expect(attachment.mounts[1]!.covers).toBeUndefined();
      expect(mountsUnder(root).sort()).toEqual([`${root}/proc`, `${root}/sys`]);
    } finally {
      detach(rootFd, attachment);
    }
  });
});

describe('hardened: false', () => {
  it.each([
    ['proc', 'proc', 'timer_list'],
    ['sysfs', 'sys', `firmware/${firmwareTableHere()}`],
  ] as const)('leaves %s bare: nothing covered, %s/%s readable', (kind, target, entry) => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target, kind, hardened: false }] }));
    try {
      expect(attachment.mounts[0]?.covers).toBeUndefined();
      expect(mountsUnder(root)).toEqual([`${root}/${target}`]);
      expect(readFileSync(join(root, target, entry)).length).toBeGreaterThan(0);
    } finally {
      detach(rootFd, attachment);
    }
  });
});

describe('a cover that cannot be made', () => {
  // A namespace whose /dev is an empty tmpfs has no /dev/null to mask files with: a real failure,
  // after the read-only covers are made, that must take them and the proc off again.
  /** What test/fixtures/attach-without-dev-null.mjs prints. */
  interface Seen {
    devNullHere: boolean;
    error: string;
    rollbackProblems: string[];
    coversMadeFirst: number;
    tableBefore: string;
    tableAfter: string;
  }
  function attachWithoutDevNull(preexisting: string[], unmountMethod?: 'fchdir'): Seen {
    for (const dir of preexisting) mkdirSync(join(root, dir));
    const fixture = join(repo, 'test', 'fixtures', 'attach-without-dev-null.mjs');
    const args = [process.execPath, fixture, root, ...(unmountMethod ? [unmountMethod] : [])];
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs no-dev /dev && exec "$0" "$@"', ...args], {
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    return parseJson<Seen>(result.stdout);
  }
  const firstMaskedFile = () => PROC_COVERS.find((s) => s.how === 'masked' && !s.directory && procCoversHere().includes(s.name))!.name;

  it('fails the attach naming the cover, and leaves no mount and no directory', () => {
    const seen = attachWithoutDevNull([]);
    expect(seen.devNullHere).toBe(false);
    expect(seen.error).toBe(`cover \`proc/${firstMaskedFile()}\` masked: open_tree /dev/null: ENOENT (a masked file gets /dev/null bound over it)`);
    expect(seen.rollbackProblems).toEqual([]);
    // The read-only covers were made before the failing one, and went again with the proc.
    expect(seen.coversMadeFirst).toBeGreaterThanOrEqual(procCoversHere().filter((name) => PROC_COVERS.find((s) => s.name === name)?.how === 'readonly').length);
    expect(seen.tableAfter).toBe(seen.tableBefore);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('takes the proc off by name, after checking it again, where unmounting by fd is not possible', () => {
    const seen = attachWithoutDevNull([], 'fchdir');
    expect(seen.error).toBe(`cover \`proc/${firstMaskedFile()}\` masked: open_tree /dev/null: ENOENT (a masked file gets /dev/null bound over it)`);
    expect(seen.rollbackProblems).toEqual([]);
    expect(seen.tableAfter).toBe(seen.tableBefore);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('rolls back the entries before it and keeps a proc directory the root already had', () => {
    const seen = attachWithoutDevNull(['proc']);
    expect(seen.error).toMatch(/^cover `proc\/\w+` masked: open_tree \/dev\/null: ENOENT/);
    expect(seen.tableAfter).toBe(seen.tableBefore);
    expect(readdirSync(root).sort()).toEqual(['bin', 'proc', 'usr']);
    expect(readdirSync(join(root, 'proc'))).toEqual([]);
  });
});
