// The action enters its own cgroup without the caller's thread (native/starter/cgroup.c): born
// into its v2 cgroup (clone3 CLONE_INTO_CGROUP, by the server or the starter), it joins the v1
// trees itself and sets its oom_score_adj while it waits at its gate. What must hold, shown on
// this hybrid host for each way the starter forks: the process is in its v2 cgroup the moment its
// pid is known, in every tree before the gate opens, and its cgroup namespace (made as the gate
// opens) is rooted there; a cgroup it cannot enter is one start error naming the step; and a served
// init killed with its cgroup is reported killed by the server, which reaps it ("K").
//
// Except a served init that shares the server's memory (x86_64: native/starter/server.c): it must
// be in none of the action's cgroups (the kernel's OOM kill of it would kill the server and every
// other init with it), and the action, born into its v2 cgroup by the init, enters the rest itself
// as it starts.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownCapabilities, probePivotRoot } from '../src/linux/index.js';
import type { ActionCgroup, CgroupLimits, StartedAction, StarterServer } from '../src/sandbox/index.js';
import { fixtureBinary } from './helpers/attacker.js';
import { asExpected } from './helpers/checked.js';
import { busyboxRoot, openDir, removeTree, repo, scratchDir } from './helpers/roots.js';

const sandbox = asExpected<typeof import('../src/sandbox/index.js')>(await import(join(repo, 'dist', 'sandbox', 'index.js')));
const { ActionCgroups, outcomeOf, prepareIsolation, SANDBOX_DEFAULTS, StartedAction: Started, STARTER_PATH, StarterServer: Server } = sandbox;

const LIMITS: CgroupLimits = { pids: 100, memoryBytes: null, cpu: null, oomScoreAdj: null, nice: null };

let root: string;
let out: string;
let server: StarterServer;
beforeAll(() => {
  root = busyboxRoot();
  out = scratchDir('mountat-starter-cgroup-');
  server = new Server(STARTER_PATH);
});
afterAll(() => {
  server.close();
  removeTree(root);
  removeTree(out);
});

const read = (path: string) => readFileSync(path, 'utf8').trim();
const members = (directory: string) => read(`${directory}/cgroup.procs`).split('\n').filter(Boolean).map(Number);

async function until(what: () => boolean, ms = 5000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) if (what()) return true;
  return what();
}

interface Way {
  served: boolean;
  pidns: boolean;
}
const WAYS: Way[] = [
  { served: true, pidns: true }, // the server clones the init, sharing its memory (x86_64), or forks it into the cgroup
  { served: false, pidns: true }, // the executed starter forks the init into the cgroup
  { served: true, pidns: false }, // a served starter forks the action itself into it
];
/** The server clones its inits with CLONE_VM where the starter has its own clone3 for it (raw.h). */
const sharesMemory = ({ served, pidns }: Way) => served && pidns && process.arch === 'x64';
const named = ({ served, pidns }: Way) => `${served ? 'served' : 'executed'}, ${pidns ? 'with' : 'without'} a PID namespace`;

/** `entered` runs once the fds of the cgroup's entry are open, before the start. */
function start(cgroup: ActionCgroup, way: Way, argv: string[], oomScoreAdj: number | null = null, entered?: () => void, via = server): StartedAction {
  const { isolation } = prepareIsolation(
    {
      rooted: true,
      pidNamespace: way.pidns,
      network: 'host',
      capabilities: SANDBOX_DEFAULTS.capabilities,
      runAs: undefined,
      userNamespaces: false,
      allowSyscalls: [],
    },
    { own: ownCapabilities(), pivotRoot: probePivotRoot(), procPidns: way.pidns },
    'the test',
  );
  const stdout = openSync(join(out, 'out'), 'w');
  try {
    using rootFd = openDir(root);
    using entry = cgroup.entry();
    entered?.();
    return new Started({
      argv,
      env: { PATH: '/bin' },
      root: rootFd,
      workingDirectory: '.',
      stdout,
      stderr: stdout,
      isolation,
      server: way.served ? via : undefined,
      cgroup: entry,
      oomScoreAdj,
    });
  } finally {
    closeSync(stdout);
  }
}

/** The lines of /proc/PID/cgroup, read from inside PID's cgroup namespace, that do not say "/". */
const linesNotAtRootSeenFromInside = (pid: number) =>
  execFileSync('nsenter', ['--cgroup', '-t', String(pid), 'cat', `/proc/${pid}/cgroup`], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter((line) => !line.endsWith(':/'));

/** The tree's path of the cgroup, as /proc/PID/cgroup names it from the host's cgroup namespace. */
const pathIn = (tree: string, directory: string) => directory.replace(tree === 'unified' ? '/sys/fs/cgroup/unified' : `/sys/fs/cgroup/${tree}`, '');

describe('the action enters its cgroup itself', () => {
  for (const way of WAYS) {
    it(`${named(way)}: born into its v2 cgroup, in every tree before its gate, its cgroup namespace rooted there`, async () => {
      using cgroups = ActionCgroups.open({ limits: LIMITS, moveIntoLeaf: false }).cgroups!;
      await using cgroup = cgroups.create();
      const dirs = cgroup.directories;
      expect(Object.keys(dirs).sort()).toEqual(['blkio', 'memory', 'pids', 'unified']);
      await using action = start(cgroup, way, ['/bin/sleep', '100'], 500);
      const pid = await action.pid;
      if (sharesMemory(way)) {
        // The init: in none of the action's cgroups, at the gate and after, nor at its oom_score_adj.
        const outside = () => Object.values(dirs).every((dir) => !members(dir).includes(pid)) && read(`/proc/${pid}/oom_score_adj`) !== '500';
        expect(outside()).toBe(true);
        action.open();
        expect(await until(() => members(dirs.pids!).length > 0)).toBe(true);
        expect(outside()).toBe(true);
      } else {
        // No migration in the v2 tree: there from its birth, when its pid is first known.
        expect(members(dirs.unified!)).toContain(pid);
        // The v1 trees it joins, and its oom_score_adj it sets, while it waits at its gate (still closed).
        const entered = () => ['pids', 'memory', 'blkio'].every((tree) => members(dirs[tree]!).includes(pid)) && read(`/proc/${pid}/oom_score_adj`) === '500';
        expect(await until(entered)).toBe(true);
        action.open();
      }
      // The action's process (pid 2 of its namespace with one; else the same process) runs sleep.
      expect(await until(() => members(dirs.pids!).some((p) => read(`/proc/${p}/comm`) === 'sleep'))).toBe(true);
      // With a PID namespace the pid known is its init's, and the action its child.
      const sleeper = members(dirs.pids!).find((p) => read(`/proc/${p}/comm`) === 'sleep')!;
      expect(sleeper === pid ? 'itself' : Number(read(`/proc/${sleeper}/stat`).split(' ')[3]) === pid ? 'init' : 'other').toBe(way.pidns ? 'init' : 'itself');
      // Every member (the init where it is in them, and the action) in every tree.
      expect(members(dirs.unified!)).toContain(sleeper);
      for (const member of members(dirs.pids!)) {
        const lines = read(`/proc/${member}/cgroup`);
        for (const [tree, dir] of Object.entries(dirs)) expect(lines).toContain(`:${pathIn(tree, dir)}`);
        // Seen from inside its own cgroup namespace, every line is "/": that namespace (made as the
        // gate opened) is rooted at the cgroups it was in by then, in every tree.
        expect(linesNotAtRootSeenFromInside(member)).toEqual([]);
        expect(read(`/proc/${member}/oom_score_adj`)).toBe('500');
      }
      action.kill();
      expect((await action.ended).kind).toBe('signalled');
    });
  }

  for (const [removed, way] of [
    ['pids', WAYS[0]!],
    ['pids', WAYS[1]!],
    ['unified', WAYS[0]!],
    ['unified', WAYS[2]!],
  ] as const) {
    it(`${named(way)}: a cgroup removed in the ${removed} tree before the start is one start error naming the step`, async () => {
      using cgroups = ActionCgroups.open({ limits: LIMITS, moveIntoLeaf: false }).cgroups!;
      await using cgroup = cgroups.create();
      // Open still (the caller's fds), gone from the tree: the kernel refuses to put a process there.
      await using action = start(cgroup, way, ['/bin/true'], null, () => rmdirSync(cgroup.directories[removed]!));
      // As the runner: the gate opens once the pid is known (never, where the fork itself failed).
      if (await action.pid.then(() => true).catch(() => false)) action.open();
      const end = await action.ended;
      expect(end).toMatchObject({ kind: 'start-failed', step: 'cgroup' });
      const outcome = outcomeOf({ end, teardown: [], argv0: '/bin/true', rootName: 'the root' });
      expect(outcome.error?.message).toMatch(/^cannot start "\/bin\/true" in the root: cgroup: E[A-Z]+$/);
      expect(existsSync(cgroup.directories[removed]!)).toBe(false);
    });
  }
});

describe.runIf(process.arch === 'x64')('a server whose clone3 is refused (ENOSYS), as Docker and podman refuse it', () => {
  it('still shares its memory with the init, which stays out of the cgroups; the action joins its v2 cgroup by writing', async () => {
    // The server under a filter of its own that fails clone3 with ENOSYS (test/fixtures/seccomp-errno.c):
    // the init and the action are cloned with the older clone, which cannot be born into a cgroup.
    const dir = scratchDir('mountat-starter-clone3-');
    const wrapper = join(dir, 'starter');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${fixtureBinary('seccomp-errno')} clone3 ENOSYS -- ${STARTER_PATH} "$@"\n`, { mode: 0o755 });
    const refused = new Server(wrapper);
    try {
      using cgroups = ActionCgroups.open({ limits: LIMITS, moveIntoLeaf: false }).cgroups!;
      await using cgroup = cgroups.create();
      const dirs = cgroup.directories;
      await using action = start(cgroup, WAYS[0]!, ['/bin/sleep', '100'], 500, undefined, refused);
      const init = await action.pid;
      action.open();
      expect(await until(() => members(dirs.unified!).some((p) => read(`/proc/${p}/comm`) === 'sleep'))).toBe(true);
      const sleeper = members(dirs.unified!).find((p) => read(`/proc/${p}/comm`) === 'sleep')!;
      expect(Number(read(`/proc/${sleeper}/stat`).split(' ')[3])).toBe(init);
      // The init in none of the action's cgroups; the action in all of them, at its oom_score_adj,
      // its cgroup namespace rooted there.
      for (const directory of Object.values(dirs)) {
        expect(members(directory)).not.toContain(init);
        expect(members(directory)).toContain(sleeper);
      }
      expect(read(`/proc/${sleeper}/oom_score_adj`)).toBe('500');
      expect(linesNotAtRootSeenFromInside(sleeper)).toEqual([]);
      action.kill();
      expect((await action.ended).kind).toBe('signalled');
    } finally {
      refused.close();
      removeTree(dir);
    }
  });
});

describe('a served init killed with its cgroup', () => {
  it('is reported killed, by the server that reaps it ("K"), not lost', async () => {
    using cgroups = ActionCgroups.open({ limits: LIMITS, moveIntoLeaf: false }).cgroups!;
    await using cgroup = cgroups.create();
    await using action = start(cgroup, WAYS[0]!, ['/bin/sleep', '100']);
    const init = await action.pid;
    action.open();
    expect(await until(() => members(cgroup.directories.pids!).some((p) => read(`/proc/${p}/comm`) === 'sleep'))).toBe(true);
    // As the kernel's OOM kill of the whole action (memory.oom.group, or the v1 watch's kill of
    // every process after the kernel's) may: the init first, before it could report the action's
    // end; the action dies with its namespace. (cgroup.kill() may reach the action first, and the
    // init then reports its end itself: not the case shown here.)
    process.kill(init, 'SIGKILL');
    expect(await action.ended).toMatchObject({ kind: 'signalled', signal: 9 });
  });
});
