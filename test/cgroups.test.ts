// The cgroup engine (src/sandbox/cgroups/) on this machine's real kernel, with nothing mocked: the
// limits land in the kernel's own files, a process joined is in every tree, everything in the
// cgroup is killed and waited for, the figures are the kernel's, and nothing is left behind.
//
// Layout covered: the HYBRID one of this project's CI machines (Debian 12: pids, memory, cpu,
// cpuacct, blkio on v1; a v2 tree with no controller but its core files). Run here: the v1
// files of every controller, and on the v2 tree cgroup.kill, cgroup.events, cpu.stat, PSI, and
// the leaf move and subtree_control that v2 delegation needs (with hugetlb, the one controller
// this v2 tree has). The v2 files of pids, memory and cpu cannot run on this layout; their names
// and values are the table in files.ts, checked by its unit test (docs/cgroups.md says so).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ActionCgroup as ActionCgroupType, CgroupLimits } from '../src/sandbox/index.js';
import { asExpected, codeOf } from './helpers/checked.js';
import { repo } from './helpers/roots.js';

const sandbox = asExpected<typeof import('../src/sandbox/index.js')>(await import(join(repo, 'dist', 'sandbox', 'index.js')));
const internals = asExpected<typeof import('../src/sandbox/cgroups/action-cgroups.js')>(
  await import(join(repo, 'dist', 'sandbox', 'cgroups', 'action-cgroups.js')),
);
const { ActionCgroups, probeCgroups, readLayout } = sandbox;

const MiB = 1024 * 1024;
const LIMITS: CgroupLimits = { pids: 100, memoryBytes: 64 * MiB, cpu: { quota: 0.5, weight: 200 }, oomScoreAdj: 500, nice: null };

const read = (path: string) => readFileSync(path, 'utf8').trim();

/** A process that waits for a line on stdin, then runs `script` (so that it is joined before it forks). */
function waiting(script: string): ChildProcess {
  return spawn('sh', ['-c', `read go; ${script}`], { stdio: ['pipe', 'pipe', 'inherit'] });
}

async function untilGone(pid: number, ms = 5000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    if (!existsSync(`/proc/${pid}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

function open(limits: CgroupLimits = LIMITS) {
  const opened = ActionCgroups.open({ limits, moveIntoLeaf: false });
  expect(opened.unavailable).toEqual([]);
  return opened.cgroups!;
}

describe('a cgroup per action, on this layout', () => {
  it('is hybrid here, every controller on v1, and this process may make cgroups below its own', () => {
    const probe = probeCgroups();
    expect(probe).toMatchObject({ layout: 'hybrid', controllers: { pids: 'v1', memory: 'v1', cpu: 'v1', io: 'v1' } });
    expect(probe.problem).toBeUndefined();
    expect(probe.parents.unified).toBe('/sys/fs/cgroup/unified');
  });

  it("writes each limit into the kernel's file for it, in the tree that carries it, and removes it all", async () => {
    const cgroups = open();
    const cgroup: ActionCgroupType = cgroups.create();
    const dirs = cgroup.directories;
    expect(Object.keys(dirs).sort()).toEqual(['blkio', 'cpu', 'memory', 'pids', 'unified']);
    expect(read(`${dirs.pids}/pids.max`)).toBe('100');
    expect(read(`${dirs.memory}/memory.limit_in_bytes`)).toBe(String(64 * MiB));
    expect(read(`${dirs.memory}/memory.memsw.limit_in_bytes`)).toBe(String(64 * MiB));
    expect(read(`${dirs.cpu}/cpu.cfs_quota_us`)).toBe('50000');
    expect(read(`${dirs.cpu}/cpu.cfs_period_us`)).toBe('100000');
    expect(read(`${dirs.cpu}/cpu.shares`)).toBe('2048');
    // Below this process's own cgroup in each tree (the memory one is /process_api/… here).
    const own = readLayout().v1.find((h) => h.name === 'memory')!.ownPath;
    expect(dirs.memory).toBe(`/sys/fs/cgroup/memory${own}/mountat-${process.pid}/1`);
    await cgroup[Symbol.asyncDispose]();
    for (const dir of Object.values(dirs)) expect(existsSync(dir)).toBe(false);
    const bases = Object.values(cgroups.bases);
    cgroups[Symbol.dispose]();
    for (const base of bases) expect(existsSync(base)).toBe(false);
  });

  it("makes the next action's cgroup ahead when asked, hands it out whole, and removes an unused one", async () => {
    const made = ActionCgroups.open({ limits: LIMITS, moveIntoLeaf: false, ahead: true });
    expect(made.unavailable).toEqual([]);
    const cgroups = made.cgroups!;
    const bases = Object.values(cgroups.bases);
    const first = cgroups.create();
    // Asked while the first one's action runs: made once this thread is free, not before.
    cgroups.makeAhead();
    const next = (name: string) => bases.map((base) => `${base}/${name}`);
    expect(next('2').filter((dir) => existsSync(dir))).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    for (const dir of next('2')) expect(existsSync(dir)).toBe(true);
    expect(read(`${cgroups.bases.pids}/2/pids.max`)).toBe('100');
    // The next create() is that one, its entry fds opened ahead; a process it starts is in every tree.
    const second = cgroups.create();
    expect(Object.values(second.directories).sort()).toEqual(next('2').sort());
    // Joined before it forks: what it runs is charged to the cgroup.
    const child = waiting('seq 1 200000 > /dev/null; exit 0');
    {
      using entry = second.entry();
      expect(entry.directory).toBeGreaterThan(2);
      expect(entry.procs).toHaveLength(4);
      for (const fd of entry.procs) writeFileSync(fd, String(child.pid));
    }
    second.join(child.pid!);
    for (const dir of Object.values(second.directories)) expect(read(`${dir}/cgroup.procs`)).toBe(String(child.pid));
    child.stdin!.end('go\n');
    await once(child, 'exit');
    // Its end and its figures, as the kernel's files say.
    await second.stop();
    const usage = second.usage();
    expect(usage.pidsPeak).toBe(Number(read(`${second.directories.pids}/pids.peak`)));
    expect(usage.pidsPeak).toBeGreaterThanOrEqual(1);
    expect(usage.memoryPeakBytes).toBe(Number(read(`${second.directories.memory}/memory.max_usage_in_bytes`)));
    expect(usage.memoryPeakBytes).toBeGreaterThan(0);
    // The CPU time is v2's cpu.stat here (a core file of the v2 tree).
    expect(usage.userMicros).toBe(Number(/^user_usec (\d+)$/m.exec(read(`${second.directories.unified}/cpu.stat`))?.[1]));
    expect(usage.userMicros! + usage.systemMicros!).toBeGreaterThan(0);
    await second[Symbol.asyncDispose]();
    await first[Symbol.asyncDispose]();
    // One more made ahead and never used: disposing the whole removes it, and every base.
    cgroups.makeAhead();
    await new Promise((resolve) => setImmediate(resolve));
    for (const dir of next('3')) expect(existsSync(dir)).toBe(true);
    cgroups[Symbol.dispose]();
    for (const dir of [...next('3'), ...bases]) expect(existsSync(dir)).toBe(false);
  });

  it('makes nothing ahead unless asked to', async () => {
    using cgroups = open();
    const cgroup = cgroups.create();
    cgroups.makeAhead();
    await new Promise((resolve) => setImmediate(resolve));
    for (const base of Object.values(cgroups.bases)) expect(existsSync(`${base}/2`)).toBe(false);
    await cgroup[Symbol.asyncDispose]();
  });

  it('joins a process in every tree, kills all it started, and reads the figures', async () => {
    using cgroups = open();
    await using cgroup = cgroups.create();
    const shell = waiting('sleep 100 & sleep 100 & i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo started; wait');
    cgroup.join(shell.pid!);
    const lines = readFileSync(`/proc/${shell.pid}/cgroup`, 'utf8');
    for (const [tree, dir] of Object.entries(cgroup.directories)) {
      const path = dir.replace(tree === 'unified' ? '/sys/fs/cgroup/unified' : `/sys/fs/cgroup/${tree}`, '');
      expect(lines).toContain(`${path}\n`);
    }
    shell.stdin!.write('go\n');
    await once(shell.stdout!, 'data');
    const members = read(`${cgroup.directories.pids}/cgroup.procs`).split('\n').map(Number);
    expect(members.length).toBe(3);
    const exited = once(shell, 'exit');
    await cgroup.stop();
    expect(await exited).toEqual([null, 'SIGKILL']);
    for (const pid of members) expect(await untilGone(pid)).toBe(true);
    expect(read(`${cgroup.directories.unified}/cgroup.events`)).toMatch(/^populated 0$/m);
    const usage = cgroup.usage();
    // The kernel's own figures: the loop's CPU, the three processes at once, their memory.
    expect(usage.userMicros! + usage.systemMicros!).toBeGreaterThan(0);
    expect(usage.pidsPeak).toBe(3);
    expect(usage.pidsLimitHits).toBe(0);
    expect(usage.memoryPeakBytes).toBeGreaterThan(0);
    expect(usage.cpuPressure).toBeDefined();
    expect(usage.oomKilled).toBe(false);
  });

  it('refuses a fork past the pids limit, counting it', async () => {
    using cgroups = open({ ...LIMITS, pids: 5 });
    await using cgroup = cgroups.create();
    const shell = spawn('sh', ['-c', 'read go; for i in 1 2 3 4 5 6 7 8; do sleep 100 & done; echo done'], { stdio: ['pipe', 'pipe', 'pipe'] });
    cgroup.join(shell.pid!);
    const said = new Promise((resolve) => {
      shell.stdout.once('data', resolve);
      shell.once('exit', resolve);
    });
    shell.stdin.write('go\n');
    await said;
    expect(read(`${cgroup.directories.pids}/cgroup.procs`).split('\n').length).toBeLessThanOrEqual(5);
    await cgroup.stop();
    expect(cgroup.usage().pidsLimitHits).toBeGreaterThan(0);
  });

  it('kills the whole cgroup on v1 when the kernel OOM-kills one process in it', async () => {
    using cgroups = open({ ...LIMITS, memoryBytes: 32 * MiB });
    await using cgroup = cgroups.create();
    // A hog in the background (the kernel's victim) and a sleeper that only mountat can end.
    const shell = waiting(`sleep 100 & echo started; ${process.execPath} -e 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'; wait`);
    cgroup.join(shell.pid!);
    const exited = once(shell, 'exit');
    shell.stdin!.write('go\n');
    await once(shell.stdout!, 'data');
    expect(await exited).toEqual([null, 'SIGKILL']);
    await cgroup.stop();
    const usage = cgroup.usage();
    expect(usage.oomKilled).toBe(true);
    expect(usage.memoryEvents?.oomKill).toBeGreaterThanOrEqual(1);
  });

  it('sweeps the cgroups a dead process left, killing what still ran in them, and leaves live ones alone', async () => {
    const dead = spawnSync('true').pid;
    const layout = readLayout();
    const pidsOwn = `/sys/fs/cgroup/pids${layout.v1.find((h) => h.name === 'pids')!.ownPath}`.replace(/\/$/, '');
    const unifiedOwn = `/sys/fs/cgroup/unified${layout.v2!.ownPath}`.replace(/\/$/, '');
    const stale = [`${pidsOwn}/mountat-${dead}`, `${unifiedOwn}/mountat-${dead}`];
    const live = `${pidsOwn}/mountat-1`; // pid 1 is alive
    for (const base of [...stale, live]) mkdirSync(`${base}/7`, { recursive: true });
    const leftover = spawn('sleep', ['100']);
    for (const base of stale) writeFileSync(`${base}/7/cgroup.procs`, String(leftover.pid));
    try {
      using cgroups = open();
      expect(Object.keys(cgroups.bases).length).toBeGreaterThan(0);
      expect(await untilGone(leftover.pid!)).toBe(true);
      for (const base of stale) expect(existsSync(base)).toBe(false);
      expect(existsSync(`${live}/7`)).toBe(true);
    } finally {
      rmdirSync(`${live}/7`);
      rmdirSync(live);
      leftover.kill('SIGKILL');
    }
  });

  it("moves a v2 cgroup's processes into a leaf, without which it cannot enable a controller", async () => {
    const own = `/sys/fs/cgroup/unified${readLayout().v2!.ownPath}`.replace(/\/$/, '');
    const parent = `${own}/mountat-test-${process.pid}`;
    // A cgroup can enable for its children only what its parent enabled for it: hugetlb in this
    // process's own cgroup's subtree_control first (the tree's root here, which may always), as
    // the delegation it stands for would have it; left as it was found.
    const ownControl = () => read(`${own}/cgroup.subtree_control`).split(' ');
    const enabledHere = !ownControl().includes('hugetlb');
    if (enabledHere) writeFileSync(`${own}/cgroup.subtree_control`, '+hugetlb');
    mkdirSync(parent);
    const sleeper = spawn('sleep', ['100']);
    try {
      writeFileSync(`${parent}/cgroup.procs`, String(sleeper.pid));
      // v2's "no internal processes": the kernel refuses while the cgroup has one.
      let refused: unknown;
      try {
        internals.enable(parent, ['hugetlb']);
      } catch (error) {
        refused = error;
      }
      expect(codeOf(refused)).toBe('EBUSY');
      internals.moveIntoLeaf(parent);
      expect(read(`${parent}/cgroup.procs`)).toBe('');
      expect(read(`${parent}/${sandbox.RUNNER_LEAF}/cgroup.procs`)).toBe(String(sleeper.pid));
      internals.enable(parent, ['hugetlb']);
      expect(read(`${parent}/cgroup.subtree_control`)).toBe('hugetlb');
    } finally {
      sleeper.kill('SIGKILL');
      await once(sleeper, 'exit');
      writeFileSync(`${parent}/cgroup.subtree_control`, '-hugetlb');
      for (let i = 0; i < 100 && existsSync(`${parent}/${sandbox.RUNNER_LEAF}`); i++) {
        try {
          rmdirSync(`${parent}/${sandbox.RUNNER_LEAF}`);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
      rmdirSync(parent);
      if (enabledHere) writeFileSync(`${own}/cgroup.subtree_control`, '-hugetlb');
    }
  });
});
