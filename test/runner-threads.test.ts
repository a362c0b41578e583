// The runner's actions on worker threads (actionThreads, src/runner/action-pool.ts), through a real
// runner over its socket with a real gRPC client: many actions at once answered from several
// threads, each right; a cancelled RPC and a SIGTERM still kill and tear down everything (nothing
// mounted, no record, no cgroup of the runner's left); actionThreads 0 still runs actions on the
// main thread; and a thread that stops mid-action leaves no RPC hanging.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actionPlanMounts, defaultPlanMountCount, processWith, mountTable, mountsUnder, removeTree, repo, scratchDir } from './helpers/roots.js';
import { asExpected, parseJson } from './helpers/checked.js';
import { makeAction, requestFor, run, startRunner, type RunnerProcess } from './helpers/runner.js';
import { loadRunnerProto } from '../src/runner/index.js';

/** The directories of this process's cgroups in every mounted hierarchy (v1 by controller, v2 "unified"). */
function cgroupDirectoriesOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .trim()
    .split('\n')
    .flatMap((line) => {
      const [, controllers, path] = line.split(':');
      if (controllers === undefined || path === undefined || controllers.startsWith('name=')) return [];
      const directory = controllers === '' ? join('/sys/fs/cgroup/unified', path) : join('/sys/fs/cgroup', controllers, path);
      return existsSync(directory) ? [directory] : [];
    });
}

/** The runner's cgroup bases (mountat-<pid>, mountat-<pid>.<n>) beside where it runs: where actions' cgroups are made. */
function basesOf(pid: number, directories: string[]): string[] {
  return directories.flatMap((directory) => {
    // The runner's processes may sit in the leaf mountat-runner (v2): the bases are beside it.
    const parent = directory.endsWith('/mountat-runner') ? directory.slice(0, -'/mountat-runner'.length) : directory;
    return readdirSync(parent)
      .filter((entry) => entry === `mountat-${pid}` || entry.startsWith(`mountat-${pid}.`))
      .map((entry) => join(parent, entry));
  });
}

/** The processes whose parent is `pid`, by command line. */
function childrenOf(pid: number): string[] {
  const out = spawnSync('ps', ['-o', 'args=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
  return out.trim().split('\n').filter(Boolean);
}

/** The "action" log lines of a runner, parsed. */
function actionLines(runner: RunnerProcess): Array<{ id: string; outcome: string; thread?: number }> {
  return runner
    .output()
    .split('\n')
    .filter((line) => line.includes('"msg":"action"'))
    .map((line) => parseJson<{ action: { id: string; outcome: string; thread?: number } }>(line).action);
}

async function until(what: string, condition: () => boolean, seconds = 20): Promise<void> {
  for (let i = 0; i < seconds * 50 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  expect(condition(), what).toBe(true);
}

const stdoutOf = (runner: RunnerProcess, id: string) => readFileSync(join(runner.build, id, 'stdout'), 'utf8');

describe('actionThreads 3', () => {
  let runner: RunnerProcess;
  let table: string;
  let cgroups: string[];
  let counter = 0;
  const newAction = () => {
    const id = `t${++counter}`;
    makeAction(runner.build, id);
    return id;
  };
  beforeAll(async () => {
    table = mountTable();
    runner = await startRunner({ actionThreads: 3 });
    cgroups = cgroupDirectoriesOf(runner.process.pid!);
  });
  afterAll(async () => {
    expect(await runner.stop()).toBe(0);
    expect(mountTable()).toBe(table);
    // Every thread's cgroups base is gone with it, and the main thread's.
    expect(basesOf(runner.process.pid!, cgroups)).toEqual([]);
    removeTree(runner.dir);
  });

  it("opens a cgroups base per thread, beside the main thread's", async () => {
    // The main thread's base and one per thread, in the v2 tree (where this host has one): each thread opens its own as it starts.
    const unified = () => basesOf(runner.process.pid!, cgroups).filter((base) => base.startsWith('/sys/fs/cgroup/unified/'));
    if (existsSync('/sys/fs/cgroup/unified/cgroup.procs')) await until('four bases', () => unified().length === 4);
  });

  it('answers 16 actions in flight from several threads, each with its own output, root and /tmp', async () => {
    const ids = Array.from({ length: 16 }, () => newAction());
    for (const id of ids) writeFileSync(join(runner.build, id, 'root', 'whoami'), id);
    // Long enough that all 16 are in flight at once.
    const script = 'sleep 0.3; cat /whoami; echo; echo mine > /tmp/$(cat /whoami); ls /tmp; echo "pids: $(ls /proc | grep -c "^[0-9]")"; exit 7';
    const responses = await Promise.all(ids.map((id) => run(runner.client, requestFor(id, script))));
    expect(responses.map((r) => r.exitCode)).toEqual(ids.map(() => '7'));
    for (const id of ids) {
      const lines = stdoutOf(runner, id).trim().split('\n');
      expect(lines[0]).toBe(id);
      expect(lines[1]).toBe(id);
      expect(Number(lines[2]?.replace('pids: ', ''))).toBeLessThanOrEqual(5);
      expect(readFileSync(join(runner.build, id, 'tmp', id), 'utf8')).toBe('mine\n');
    }
    expect(mountsUnder(runner.build)).toEqual([]);
    // The log line of each, in the main thread, names the thread that ran it: all three took some.
    // (The lines reach this process through a pipe, maybe after the answers.)
    await until('a log line per action', () => actionLines(runner).filter((line) => ids.includes(line.id)).length === ids.length);
    const threads = new Set(
      actionLines(runner)
        .filter((line) => ids.includes(line.id))
        .map((line) => line.thread),
    );
    expect(threads.size).toBe(3);
    expect([...threads].every((thread) => typeof thread === 'number' && thread > 0)).toBe(true);
    expect(readdirSync(join(runner.dir, 'state')).filter((name) => name.startsWith('action-'))).toEqual([]);
    // Each thread started a starter fork server of its own with its first action.
    expect(childrenOf(runner.process.pid!).filter((args) => args.includes('--serve'))).toHaveLength(3);
  });

  it('kills the whole process tree, whose mounts go with it, when the RPC is cancelled', async () => {
    const id = newAction();
    const marks = [60, 61, 62].map((n) => `${n}.${counter}9`);
    const call = runner.client.Run(requestFor(id, `sleep ${marks[0]} & sleep ${marks[1]} & echo started; exec sleep ${marks[2]}`), () => {});
    await until('the action started', () => existsSync(join(runner.build, id, 'stdout')) && stdoutOf(runner, id).includes('started'));
    // Its mounts are in its own namespace only, on a detached copy of its root.
    expect(actionPlanMounts(await processWith(`sleep ${marks[2]}`))).toHaveLength(defaultPlanMountCount());
    expect(mountsUnder(runner.build), mountTable()).toEqual([]);
    call.cancel();
    for (const mark of marks) await until(`sleep ${mark} is gone`, () => spawnSync('pgrep', ['-f', `sleep ${mark}`]).status === 1);
    await until('its record is removed', () => !existsSync(join(runner.dir, 'state', `action-${id}.json`)));
    await until('its log line', () => actionLines(runner).some((line) => line.id === id && line.outcome === 'cancelled'));
  });
});

it('tears every action in flight down on SIGTERM: nothing mounted, no record, no cgroup of its own left', async () => {
  const table = mountTable();
  const runner = await startRunner({ actionThreads: 2 });
  const pid = runner.process.pid!;
  const cgroups = cgroupDirectoriesOf(pid);
  const ids = ['s1', 's2', 's3', 's4'];
  for (const id of ids) makeAction(runner.build, id);
  const pending = ids.map((id) =>
    run(runner.client, requestFor(id, 'echo started; exec sleep 63.5')).then(
      () => 'answered',
      (error: unknown) => asExpected<{ code: number }>(error).code,
    ),
  );
  // A failed check before the SIGTERM below must not leave the runner running (stop() is idempotent).
  const orKill = async <T>(check: () => T | Promise<T>): Promise<T> => {
    try {
      return await check();
    } catch (error) {
      await runner.stop('SIGKILL');
      throw error;
    }
  };
  await orKill(() =>
    until('every action started', () => ids.every((id) => existsSync(join(runner.build, id, 'stdout')) && stdoutOf(runner, id).includes('started'))),
  );
  // Each has its mounts in its own namespace; the runner's has none of them.
  await orKill(() => {
    const sleepers = spawnSync('pgrep', ['-f', 'sleep 63.5'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
    expect(sleepers).toHaveLength(4);
    for (const sleeper of sleepers) expect(actionPlanMounts(sleeper)).toHaveLength(defaultPlanMountCount());
    expect(mountsUnder(runner.build)).toEqual([]);
    expect(readdirSync(join(runner.dir, 'state')).filter((name) => /^action-.*\.json$/.test(name))).toHaveLength(4);
    // The actions' own cgroups exist while they run (below the threads' bases), each with its
    // action in it (a cgroup made ahead for a next action has nobody): four in every tree.
    const bases = basesOf(pid, cgroups);
    const populated = bases.flatMap((base) =>
      readdirSync(base, { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && readFileSync(join(base, entry.name, 'cgroup.procs'), 'utf8').trim() !== '')
        .map((entry) => join(base, entry.name)),
    );
    expect(populated).toHaveLength(4 * new Set(bases.map((base) => dirname(base))).size);
  });
  expect(await runner.stop('SIGTERM')).toBe(0);
  expect(await Promise.all(pending)).toEqual(ids.map(() => status.CANCELLED));
  expect(mountTable()).toBe(table);
  expect(spawnSync('pgrep', ['-f', 'sleep 63.5']).status).toBe(1);
  expect(readdirSync(join(runner.dir, 'state')).filter((name) => name.startsWith('action-'))).toEqual([]);
  expect(basesOf(pid, cgroups)).toEqual([]);
  expect(runner.output()).toMatch(/"runner stopped"/);
  removeTree(runner.dir);
});

it('runs actions on the main thread with actionThreads 0: one starter fork server, the same answers', async () => {
  const runner = await startRunner({ actionThreads: 0 });
  try {
    expect(childrenOf(runner.process.pid!).filter((args) => args.includes('--serve'))).toHaveLength(0);
    const ids = ['z1', 'z2', 'z3', 'z4'];
    for (const id of ids) makeAction(runner.build, id);
    const responses = await Promise.all(ids.map((id) => run(runner.client, requestFor(id, 'echo "$(cut -d" " -f5 /proc/self/mountinfo | grep -c .) mounts"'))));
    expect(responses.map((r) => r.exitCode)).toEqual(ids.map(() => '0'));
    for (const id of ids) expect(stdoutOf(runner, id)).toMatch(/^\d+ mounts\n$/);
    // The fork server starts with the first action: one, whatever the actions in flight.
    expect(childrenOf(runner.process.pid!).filter((args) => args.includes('--serve'))).toHaveLength(1);
    await until('a log line per action', () => actionLines(runner).length === ids.length);
    expect(actionLines(runner).map((line) => [line.outcome, line.thread])).toEqual(ids.map(() => ['exited', undefined]));
    expect(mountsUnder(runner.build)).toEqual([]);
    expect(runner.output()).toMatch(/"actionThreads":0/);
  } finally {
    expect(await runner.stop()).toBe(0);
    removeTree(runner.dir);
  }
});

it('refuses actionThreads that is not a whole number from 0 to 64, in one line', () => {
  const dir = scratchDir('mountat-runner-');
  try {
    for (const [value, why] of [
      [-1, 'must be >= 0'],
      [65, 'must be <= 64'],
      [1.5, 'must be integer'],
    ] as const) {
      writeFileSync(
        join(dir, 'config.json'),
        JSON.stringify({ buildDirectoryPath: dir, grpcServers: [{ listenPaths: [join(dir, 's')] }], actionThreads: value }),
      );
      const result = spawnSync(join(repo, 'bin', 'mountat.js'), ['runner', '--config', join(dir, 'config.json'), '--check'], { encoding: 'utf8' });
      expect([result.status, result.stderr]).toEqual([
        1,
        expect.stringMatching(new RegExp(`^mountat: config file \\S+: config.actionThreads ${why} \\(got ${value}\\)\\n$`)),
      ]);
    }
  } finally {
    removeTree(dir);
  }
});

// No request makes a thread die (every error of an action is caught and answered): the thread is
// ended here from outside its code, with Worker.terminate() on a runner in this process, which is
// what an exception escaping it or its heap limit does too (the thread's 'exit').
it('answers INTERNAL for the action of a thread that stops mid-action, and starts another in its place', async () => {
  const { settingsFrom, startRunner: startHere } = await import('../dist/runner/index.js');
  const dir = scratchDir('mountat-runner-');
  const build = join(dir, 'build');
  mkdirSync(build);
  const socket = join(dir, 'runner.sock');
  const settings = settingsFrom({ buildDirectoryPath: build, grpcServers: [{ listenPaths: [socket] }], stateDirectory: join(dir, 'state'), actionThreads: 2 });
  const lines: string[] = [];
  const here = await startHere(settings, pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }));
  const client = new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${socket}`, credentials.createInsecure());
  const waiting = 'echo started; while [ ! -e /tmp/release ]; do sleep 0.05; done; echo released';
  try {
    for (const id of ['d1', 'd2']) makeAction(build, id);
    const answers = ['d1', 'd2'].map((id) =>
      run(client, requestFor(id, waiting)).then(
        (response) => ({ exitCode: response.exitCode }),
        (error: unknown) => ({ code: asExpected<ServiceError>(error).code, details: asExpected<ServiceError>(error).details }),
      ),
    );
    const started = (id: string) => existsSync(join(build, id, 'stdout')) && readFileSync(join(build, id, 'stdout'), 'utf8').includes('started');
    await until('both actions started', () => started('d1') && started('d2'));
    const threads = here.pool!.threads;
    // One action on each thread (the one with the fewest in flight takes the next).
    expect(threads.map((thread) => thread.inFlight)).toEqual([1, 1]);
    await threads[0]!.worker.terminate();
    for (const id of ['d1', 'd2']) writeFileSync(join(build, id, 'tmp', 'release'), '');
    const results = await Promise.all(answers);
    const failed = results.filter((result) => 'code' in result);
    expect(failed).toEqual([
      {
        code: status.INTERNAL,
        details: 'action thread 1 stopped (exit code 1) while running the action: what it left is torn down when the runner next starts',
      },
    ]);
    expect(results.filter((result) => 'exitCode' in result)).toEqual([{ exitCode: '0' }]);
    expect(lines.some((line) => line.includes('"an action thread stopped: its actions are answered INTERNAL"'))).toBe(true);
    // Another thread took its place, and actions run on both.
    await until('a new thread', () => lines.some((line) => line.includes('"action thread started in place of one that stopped"')));
    expect(here.pool!.threads.map((thread) => thread.name)).toEqual(['action thread 2', 'action thread 3']);
    const more = ['d3', 'd4', 'd5', 'd6'];
    for (const id of more) makeAction(build, id);
    const responses = await Promise.all(more.map((id) => run(client, requestFor(id, 'echo ok'))));
    expect(responses.map((response) => response.exitCode)).toEqual(more.map(() => '0'));
  } finally {
    client.close();
    await here.close();
  }
  // Its mounts went with the stopped thread's action (its namespace ended; none was ever here); the
  // directories made for them stay until the next start, whose recovery removes them from its record.
  expect(mountsUnder(build)).toEqual([]);
  const made = (id: string) => readdirSync(join(build, id, 'root')).includes('proc');
  expect(['d1', 'd2'].filter(made)).toHaveLength(1);
  const next = await startRunner({}, dir);
  expect(['d1', 'd2'].filter(made)).toEqual([]);
  expect(next.output()).toMatch(/tore down what an earlier runner left, from its record/);
  expect(await next.stop()).toBe(0);
  // The stopped thread's fork server and cgroups base are this (test) process's: ended and removed here.
  for (const line of spawnSync('pgrep', ['-P', String(process.pid), '-f', 'mountat-action --serve'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean))
    process.kill(Number(line), 'SIGKILL');
  for (const base of basesOf(process.pid, cgroupDirectoriesOf(process.pid))) {
    for (const entry of readdirSync(base, { withFileTypes: true })) if (entry.isDirectory()) rmdirSync(join(base, entry.name));
    rmdirSync(base);
  }
  removeTree(dir);
});
