// A cgroup for every action (issue 20), shown through a real runner over its socket on this
// machine's real cgroups (the hybrid layout: pids, memory, cpu on v1, the core files on v2),
// nothing mocked. Each hostile action is run beside or before an ordinary one: the attack must be
// stopped, reported for what it was, and the other action and the runner must not notice. The
// hostile programs are test/fixtures/resource-hog.c, at /bin/resource-hog in the actions' roots;
// each stops itself at a ceiling (and the test then fails) where no limit stopped it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureBinary } from './helpers/attacker.js';
import { cgroupUsage } from './helpers/cgroup-usage.js';
import { mountsUnder, removeTree, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, resourceUsage, run, spawnRunner, startRunner, type RunnerProcess } from './helpers/runner.js';
import type { RunResponse__Output } from '../src/runner/generated/buildbarn/runner/RunResponse.js';

const hog = () => fixtureBinary('resource-hog');
const HOG = '/bin/resource-hog';
const MiB = 1024 * 1024;

beforeAll(() => {
  hog();
});

let counter = 0;
/** An action directory with busybox and the hog in its input root. */
function hogAction(runner: RunnerProcess): string {
  const id = `c${++counter}`;
  makeAction(runner.build, id);
  copyFileSync(hog(), join(runner.build, id, 'root', 'bin', 'resource-hog'));
  return id;
}

const output = (runner: RunnerProcess, id: string, name = 'stdout') => readFileSync(join(runner.build, id, name), 'utf8');
const runHog = (runner: RunnerProcess, id: string, args: string[]) => run(runner.client, requestFor(id, '', { arguments: [HOG, ...args] }));

/** A protobuf Duration as protobufjs's toJSON gives it ({ seconds: "1", nanos: 5 }), in seconds. */
function durationSeconds(value: unknown): number {
  const duration = (value ?? {}) as { seconds?: string | number; nanos?: number };
  return Number(duration.seconds ?? 0) + (duration.nanos ?? 0) / 1e9;
}

/** Until `path` exists, or `seconds`. */
async function until(path: string, seconds = 20): Promise<void> {
  for (let i = 0; i < seconds * 50 && !existsSync(path); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(existsSync(path), `${path} never appeared`).toBe(true);
}

/** Lets an action waiting for its /tmp/release end. */
const release = (runner: RunnerProcess, id: string) => writeFileSync(join(runner.build, id, 'tmp', 'release'), '');

/** Ordinary build work that forks (subshells, a pipe, sort): its output, and exit 0. */
const ORDINARY = 'for i in 1 2 3 4 5 6 7 8 9 10; do (echo $i); done | sort -n | tail -1; seq 1 20000 | sort -rn | head -1';
async function expectOrdinaryWorks(runner: RunnerProcess): Promise<void> {
  const id = hogAction(runner);
  const response = await run(runner.client, requestFor(id, ORDINARY));
  expect(output(runner, id, 'stderr')).toBe('');
  expect(output(runner, id)).toBe('10\n20000\n');
  expect(response.exitCode).toBe('0');
}

/**
 * An ordinary action started now that does its work, waits for its release, and does more: its
 * done() releases it and checks that it ended as it should.
 */
async function ordinaryInFlight(runner: RunnerProcess): Promise<{ done(): Promise<void> }> {
  const id = hogAction(runner);
  const response = run(runner.client, requestFor(id, `${ORDINARY}; touch /tmp/ready; while [ ! -e /tmp/release ]; do sleep 0.05; done; ${ORDINARY}`));
  await until(join(runner.build, id, 'tmp', 'ready'));
  return {
    async done() {
      release(runner, id);
      const { exitCode } = await response;
      expect(output(runner, id, 'stderr')).toBe('');
      expect(output(runner, id)).toBe('10\n20000\n10\n20000\n');
      expect(exitCode).toBe('0');
    },
  };
}

/** The live processes whose argv is `resource-hog sleeper MARKER …`, as the host sees them. */
function sleepers(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[1] === 'sleeper' && argv[2] === marker) found.push(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** The process's state letter (/proc/PID/stat), or undefined where there is no such process. */
function stateOf(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * A fork loop as the action's first process, under a runner whose pids limit is `limit`: it is
 * refused at the limit, an ordinary action in flight meanwhile still forks and finishes, and the
 * runner answers the next Run.
 */
async function forkLoopStopsAt(runner: RunnerProcess, limit: number): Promise<void> {
  const id = hogAction(runner);
  // The ceiling past the limit: where nothing refused a fork, the loop stops there (the test fails, the host keeps its pids).
  const hostile = runHog(runner, id, ['forks', String(limit + 1000), '/tmp/ready', '/tmp/release']);
  let response: RunResponse__Output | undefined;
  try {
    await until(join(runner.build, id, 'tmp', 'ready'), 60);
    const [forks, made, errno] = output(runner, id).trim().split(' ');
    expect(forks).toBe('forks');
    expect(errno).toBe('EAGAIN');
    // Every process and thread of the action counts: the starter's init and the loop itself are two of them.
    expect(Number(made)).toBeLessThan(limit);
    expect(Number(made)).toBeGreaterThanOrEqual(limit - 16);

    // While it sits at its limit, with its children asleep: another action forks and finishes.
    await expectOrdinaryWorks(runner);
  } finally {
    release(runner, id);
    response = await hostile;
  }
  expect(output(runner, id, 'stderr')).toBe('');
  expect(response.exitCode).toBe('0');
  const usage = cgroupUsage(response);
  expect(usage.pidsPeak).toBe(limit);
  expect(usage.pidsLimitHits).toBeGreaterThanOrEqual(1);
  expect(usage.oomKilled).toBe(false);
  // And the runner answers afterwards.
  await expectOrdinaryWorks(runner);
}

/** A daemon left behind by an action (double fork, setsid) is found while it runs, and gone once the Run has answered. */
async function daemonIsGone(runner: RunnerProcess): Promise<void> {
  const id = hogAction(runner);
  const marker = `mountat-daemon-${process.pid}-${id}`;
  const response = runHog(runner, id, ['daemon', HOG, marker, '/tmp/started', '/tmp/release']);
  let pid: number | undefined;
  try {
    await until(join(runner.build, id, 'tmp', 'started'));
    // It runs, and the host finds it: the check below can fail.
    const found = sleepers(marker);
    expect(found).toHaveLength(1);
    pid = found[0]!;
    // Asleep: it makes its start file just before it sleeps, so it may still be running for a moment.
    const asleep = pid;
    for (const deadline = Date.now() + 5000; stateOf(asleep) === 'R' && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stateOf(pid)).toBe('S');
  } finally {
    release(runner, id);
  }
  const answered = await response;
  try {
    expect(output(runner, id)).toBe('daemon started\n');
    expect(answered.exitCode).toBe('0');
    // The first process ended with 0, its daemon was still asleep: when the Run answers, it is dead. Without a PID
    // namespace its parent is the machine's init, which reaps it a moment later: a zombie until then.
    expect([undefined, 'Z']).toContain(stateOf(pid));
    expect(sleepers(marker)).toEqual([]);
  } finally {
    // Where the runner left it, the failure is reported and the sleeper (ours, by its pid) does not outlive the test.
    for (const left of sleepers(marker)) process.kill(left, 'SIGKILL');
  }
  await expectOrdinaryWorks(runner);
}

/** Field 19 of /proc/self/stat: the nice value. */
const NICE = `cut -d' ' -f19 /proc/self/stat`;

/**
 * An action that reads its nice value, tries to lower it (renice, refused without CAP_SYS_NICE
 * beyond what its RLIMIT_NICE allows) and to raise it (always allowed), and shows its RLIMIT_NICE.
 */
async function expectNiceFloor(runner: RunnerProcess, nice: number): Promise<void> {
  const id = hogAction(runner);
  const script = `${NICE}; renice -n -${nice + 1} -p $$; echo "lower: $?"; ${NICE}; renice -n 2 -p $$; ${NICE}; grep 'Max nice' /proc/self/limits`;
  const response = await run(runner.client, requestFor(id, script));
  const lines = output(runner, id).trim().split('\n');
  expect(lines.slice(0, 4)).toEqual([String(nice), 'lower: 1', String(nice), String(Math.min(19, nice + 2))]);
  // RLIMIT_NICE lets a process go down to 20 - limit: the action's stays at or above its floor.
  const [soft, hard] = lines[4]!.split(/\s+/).slice(3).map(Number);
  expect(20 - soft!).toBeGreaterThanOrEqual(nice);
  expect(20 - hard!).toBeGreaterThanOrEqual(nice);
  expect(output(runner, id, 'stderr')).toBe('renice: setpriority: Permission denied\n');
  expect(response.exitCode).toBe('0');
}

describe('the default config (pids 4096, oomScoreAdj 1000, nice 10, no memory limit)', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner();
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    expect(mountsUnder(runner.build)).toEqual([]);
    removeTree(runner.dir);
  });

  it('stops a fork loop at 4096 processes, while another action in flight forks and finishes', async () => {
    await forkLoopStopsAt(runner, 4096);
  }, 90_000);

  it('leaves no daemon behind: a process the action started and left is gone when the Run answers', async () => {
    await daemonIsGone(runner);
  });

  it("counts a grandchild nobody waited for: 300 MiB and its CPU in the cgroup's figures, none of it in wait4's", async () => {
    const id = hogAction(runner);
    const response = await runHog(runner, id, ['grandchild', '300', '500']);
    expect(output(runner, id, 'stderr')).toBe('');
    expect(output(runner, id)).toMatch(/^grandchild touched 300 MiB, used \d+ ms of CPU\n$/);
    expect(response.exitCode).toBe('0');
    const posix = resourceUsage(response);
    expect(Number(posix.maximumResidentSetSize)).toBeLessThan(100 * MiB);
    expect(durationSeconds(posix.userTime)).toBeLessThan(0.2);
    const usage = cgroupUsage(response);
    expect(usage.memoryPeakBytes).toBeGreaterThanOrEqual(300 * MiB);
    expect(usage.memoryPeakBytes).toBeLessThanOrEqual(360 * MiB);
    expect(usage.userSeconds + usage.systemSeconds).toBeGreaterThanOrEqual(0.4);
    expect(usage.oomKilled).toBe(false);
  });

  it('keeps the figures of actions in flight at once apart: each one sees its own 300 MiB', async () => {
    const ids = [hogAction(runner), hogAction(runner), hogAction(runner)];
    const responses = await Promise.all(ids.map((id) => runHog(runner, id, ['grandchild', '300', '500'])));
    for (const [index, response] of responses.entries()) {
      expect(output(runner, ids[index]!)).toMatch(/^grandchild touched 300 MiB/);
      expect(response.exitCode).toBe('0');
      const usage = cgroupUsage(response);
      expect(usage.memoryPeakBytes).toBeGreaterThanOrEqual(300 * MiB);
      expect(usage.memoryPeakBytes).toBeLessThanOrEqual(360 * MiB);
      expect(usage.userSeconds + usage.systemSeconds).toBeGreaterThanOrEqual(0.4);
    }
  });

  it('runs the action at nice 10, which it may raise and, as root, cannot lower', async () => {
    await expectNiceFloor(runner, 10);
  });

  it('runs the action at oom_score_adj 1000, in a cgroup namespace rooted at its own cgroup', async () => {
    const id = hogAction(runner);
    const response = await run(runner.client, requestFor(id, 'cat /proc/self/oom_score_adj; cat /proc/self/cgroup'));
    expect(output(runner, id, 'stderr')).toBe('');
    const [adj, ...cgroups] = output(runner, id).trim().split('\n');
    expect(adj).toBe('1000');
    // Every hierarchy, v1 and v2 ("0::/"), shows the action's own cgroup as its root.
    expect(cgroups.length).toBeGreaterThan(1);
    for (const line of cgroups) expect(line).toMatch(/^\d+:[^:]*:\/$/);
    expect(response.exitCode).toBe('0');
  });
});

describe('limits from the config: pids 64, a CPU quota and weight, oomScoreAdj 500, nice 3', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({ limits: { pids: 64, cpu: { quota: 0.5, weight: 50 }, oomScoreAdj: 500, nice: 3 } });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('stops a fork loop at 64', async () => {
    await forkLoopStopsAt(runner, 64);
  });

  it('runs the action at nice 3, its floor', async () => {
    await expectNiceFloor(runner, 3);
  });

  it('runs the action at the configured oom_score_adj, in a cgroup with the configured CPU quota', async () => {
    const id = hogAction(runner);
    const marker = `mountat-cpu-${process.pid}-${id}`;
    const response = run(
      runner.client,
      // A daemon of the hog's (not `&`: busybox sh gives a background job /dev/null, which the root has not) holds a process there.
      requestFor(id, `cat /proc/self/oom_score_adj; ${HOG} daemon ${HOG} ${marker} /tmp/started /tmp/release`),
    );
    try {
      await until(join(runner.build, id, 'tmp', 'started'));
      const [pid] = sleepers(marker);
      expect(pid).toBeDefined();
      // The kernel's own files for the action's CPU cgroup, found from the host through the process (no timing).
      const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .find((entry) => entry.split(':')[1]!.split(',').includes('cpu'));
      expect(line).toBeDefined();
      const dir = join('/sys/fs/cgroup/cpu', line!.split(':')[2]!);
      const quota = Number(readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8'));
      const period = Number(readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8'));
      expect(quota / period).toBe(0.5);
    } finally {
      release(runner, id);
    }
    const { exitCode } = await response;
    expect(output(runner, id)).toBe('500\ndaemon started\n');
    expect(exitCode).toBe('0');
  });
});

describe('as runCommandsAs 4242, the default nice 10', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({ runCommandsAs: { userId: 4242, groupId: 4242 } });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('runs the action at nice 10, which it may raise and cannot lower', async () => {
    await expectNiceFloor(runner, 10);
  });
});

describe('a memory limit (memoryBytes 64 MiB), and nice null', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({ limits: { memoryBytes: 64 * MiB, nice: null } });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it("runs the action at the runner's own nice value where nice is null", async () => {
    const id = hogAction(runner);
    await run(runner.client, requestFor(id, NICE));
    expect(output(runner, id)).toBe(`${readFileSync(`/proc/${runner.process.pid}/stat`, 'utf8').split(' ')[18]}\n`);
  });

  /** What an action killed for its memory answers: -1, KILL, and the cgroup's OOM figures. */
  function expectOomKilled(response: RunResponse__Output): void {
    expect(response.exitCode).toBe('-1');
    expect(resourceUsage(response)).toMatchObject({ terminationSignal: 'KILL' });
    const usage = cgroupUsage(response);
    expect(usage.oomKilled).toBe(true);
    expect(usage.memoryEvents?.oomKill).toBeGreaterThanOrEqual(1);
    expect(usage.memoryPeakBytes).toBeLessThanOrEqual(64 * MiB);
  }

  /**
   * `work` (its result returned) while an ordinary action is in flight, released once `work` has
   * been answered: that action finished its work as if nothing had happened.
   */
  async function besideAnother<T>(work: () => Promise<T>): Promise<T> {
    const other = await ordinaryInFlight(runner);
    try {
      return await work();
    } finally {
      await other.done();
    }
  }

  it('kills a memory hog alone, as an OOM kill, while another action in flight is untouched', async () => {
    const id = hogAction(runner);
    // The ceiling (512 MiB) past the limit: where nothing killed it, the hog exits 3 and says so.
    const response = await besideAnother(() => runHog(runner, id, ['touch', '512']));
    expect(output(runner, id)).toBe('');
    expectOomKilled(response);
    await expectOrdinaryWorks(runner);
  });

  it('kills an action that fills its memory with pipe buffers and lowers its oom_score_adj alone: the starter server and an action in flight live on', async () => {
    // The attack on inits that share the starter server's memory (native/starter/server.c): the
    // kernel's OOM kill of a process kills every process of its memory. Were such an init in the
    // action's cgroup, an action whose own process stays small (its 64 MiB are pipe buffers,
    // charged to its cgroup, in nobody's RSS) and that gives up its oom_score_adj of 1000 where it
    // may (with no CAP_SYS_RESOURCE, as here, nothing floors it) would have its init chosen as
    // the process to kill (the largest RSS of the cgroup: the server's), or group-killed with it:
    // and the server and every action with it.
    const servers = () =>
      spawnSync('pgrep', ['-P', String(runner.process.pid), '-f', 'mountat-action --serve'], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .filter(Boolean);
    const id = hogAction(runner);
    let before: string[] = [];
    const response = await besideAnother(() => {
      // The server is started with the first action: one is in flight before it is looked for.
      before = servers();
      expect(before).toHaveLength(1);
      return runHog(runner, id, ['pipes', '100000']);
    });
    expect(output(runner, id)).toBe('');
    expectOomKilled(response);
    expect(servers()).toEqual(before);
    await expectOrdinaryWorks(runner);
  });

  it('kills the whole action when the OOM killer picks a child its parent only waits for', async () => {
    const id = hogAction(runner);
    // Were only the child killed, the parent would sleep on for 120 s.
    const response = await runHog(runner, id, ['child-touch', '512']);
    expect(output(runner, id)).not.toContain('not killed');
    expectOomKilled(response);
    await expectOrdinaryWorks(runner);
  });
});

describe('without a PID namespace (pidNamespace: false): only the cgroup finds what the action left', () => {
  let runner: RunnerProcess;
  beforeAll(async () => {
    runner = await startRunner({ pidNamespace: false });
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  });

  it('leaves no daemon behind', async () => {
    await daemonIsGone(runner);
  });
});

describe('a runner that cannot make cgroups (an empty tmpfs over /sys/fs/cgroup)', () => {
  const NO_CGROUPS = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"', 'sh'];

  it('refuses to start with a memory limit configured, in one line naming the limit and the fix', async () => {
    const dir = scratchDir('mountat-runner-');
    try {
      const runner = spawnRunner({ limits: { memoryBytes: 64 * MiB } }, dir, NO_CGROUPS);
      const ended = await Promise.race([runner.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 15_000))]);
      if (ended === 'running') {
        // It started, limits it cannot keep and all: stopped here so that the failure is this one, not a hung test.
        runner.process.kill('SIGTERM');
        await runner.exited;
        throw new Error(`started, with a memory limit it cannot keep: ${runner.output()}`);
      }
      expect(ended[0]).not.toBe(0);
      const lines = runner.output().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('memoryBytes');
      expect(lines[0]).toMatch(/cgroup/);
      expect(existsSync(runner.socket)).toBe(false);
    } finally {
      removeTree(dir);
    }
  });

  it('starts with no limit configured, says once that it cannot bound actions, and runs them', async () => {
    const runner = await startRunner({}, undefined, NO_CGROUPS);
    try {
      await expectOrdinaryWorks(runner);
      await expectOrdinaryWorks(runner);
      const warnings = runner
        .output()
        .split('\n')
        .filter((line) => line.includes('"level":40') && /cgroup/i.test(line));
      expect(warnings).toHaveLength(1);
    } finally {
      expect(await runner.stop()).toBe(0);
      removeTree(runner.dir);
    }
  });
});
