// The runner's start-up sweep takes only its own (issue 14): what its built-in hook mounts, where
// it mounts it (<build>/<action>/root/<plan target>), of the kind it mounts there; anything else
// below the build directory stays, named in one log line. And one runner per state directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageOf } from '../src/base/index.js';
import { parseJson } from './helpers/checked.js';
import { defaultPlanMountCount, mountTable, mountsUnder, removeTree, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor, run, startRunner, type RunnerProcess } from './helpers/runner.js';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A runner whose built-in hook mounts on the input root itself, in the runner's namespace: with an
 * external prestart hook (here one that does nothing) it does, as on a kernel older than 6.15.
 * Only then can a killed runner leave mounts behind for the sweep; on a copy of the root they end
 * with the action (test/runner.test.ts).
 */
function inPlace(dir: string): { hooks: { prestart: unknown[]; poststop: unknown[] } } {
  const hook = join(dir, 'noop-hook');
  writeFileSync(hook, '#!/bin/sh\ncat > /dev/null\n', { mode: 0o755 });
  return { hooks: { prestart: [{ path: hook, args: ['noop-hook'] }, 'mountat'], poststop: ['mountat'] } };
}

/**
 * A runner SIGKILLed while action `id` runs, its record then removed: the mounts stay with
 * nothing to prove them but where and what they are (as when the runner dies after a mount and
 * before the record line that names it).
 */
async function killedMidAction(runner: RunnerProcess, id: string, realBuild: string): Promise<void> {
  makeAction(runner.build, id);
  runner.client.Run(requestFor(id, `exec sleep 64.${id.length}`), () => {});
  try {
    for (let i = 0; i < 250 && mountsUnder(join(realBuild, id)).length < defaultPlanMountCount(); i++) await wait(20);
    expect(mountsUnder(join(realBuild, id)).length).toBe(defaultPlanMountCount());
  } finally {
    // Killed whatever the check found: a failed check must not leave it running.
    await runner.stop('SIGKILL');
  }
  for (let i = 0; i < 100 && spawnSync('pgrep', ['-f', `sleep 64.${id.length}`]).status === 0; i++) await wait(20);
  rmSync(join(runner.dir, 'state', `action-${id}.json`));
}

function unmountAll(points: string[]): void {
  for (const point of [...points].reverse()) execFileSync('umount', ['-l', point]);
}

describe('the start-up sweep', () => {
  it('removes what a killed runner left where and as it mounts, and leaves everything else below the build directory', async () => {
    const table = mountTable();
    const dir = scratchDir('mountat-runner-');
    const first = await startRunner(inPlace(dir), dir);
    const build = first.build;
    await killedMidAction(first, 'k', build);
    // Others' mounts: a cache bind beside the actions, a /usr bind made in an input root by
    // whoever prepared it, a proc where no input root is, a tmpfs at a plan target of another kind.
    const cache = scratchDir('mountat-cache-');
    mkdirSync(join(build, 'cache'));
    execFileSync('mount', ['--bind', cache, join(build, 'cache')]);
    makeAction(build, 'u');
    mkdirSync(join(build, 'u', 'root', 'usr'), { recursive: true });
    execFileSync('mount', ['--bind', '-o', 'ro', '/usr', join(build, 'u', 'root', 'usr')]);
    mkdirSync(join(build, 'p', 'proc'), { recursive: true });
    execFileSync('mount', ['-t', 'proc', 'not-an-input-root', join(build, 'p', 'proc')]);
    mkdirSync(join(build, 'u', 'root', 'proc'));
    execFileSync('mount', ['-t', 'tmpfs', 'wrong-kind', join(build, 'u', 'root', 'proc')]);
    const theirs = [join(build, 'cache'), join(build, 'u', 'root', 'usr'), join(build, 'p', 'proc'), join(build, 'u', 'root', 'proc')].sort();
    const again = await startRunner({}, first.dir);
    try {
      expect(mountsUnder(build).sort()).toEqual(theirs);
      const removed = again
        .output()
        .split('\n')
        .filter((line) => line.includes('start-up sweep removed a mount'));
      // proc (with its covers), sys and the tmp bind of action k, nothing else.
      expect(removed).toHaveLength(defaultPlanMountCount());
      expect(removed.some((line) => line.includes(`"mountPoint":"${join(build, 'k', 'root', 'proc')}","fsType":"proc"`))).toBe(true);
      const leftAlone = again
        .output()
        .split('\n')
        .filter((line) => line.includes('start-up sweep left alone'));
      expect(leftAlone).toHaveLength(1);
      expect(
        parseJson<{ mounts: Array<{ mountPoint: string }> }>(leftAlone[0]!)
          .mounts.map((m) => m.mountPoint)
          .sort(),
      ).toEqual(theirs);
      expect(readdirSync(join(cache))).toEqual([]);
    } finally {
      await again.stop();
      unmountAll(mountsUnder(build));
      removeTree(first.dir);
      removeTree(cache);
    }
    expect(mountTable()).toBe(table);
  });

  it('sweeps a build directory given through a symlink as it sweeps any other', async () => {
    const table = mountTable();
    const dir = scratchDir('mountat-runner-');
    const real = join(dir, 'real-build');
    mkdirSync(real);
    symlinkSync('real-build', join(dir, 'build'));
    const first = await startRunner(inPlace(dir), dir);
    try {
      expect(first.build).toBe(join(dir, 'build'));
      await killedMidAction(first, 's', realpathSync(real));
      const again = await startRunner({}, dir);
      try {
        expect(mountsUnder(realpathSync(real))).toEqual([]);
        expect(again.output()).toMatch(
          new RegExp(`"mountPoint":"${join(realpathSync(real), 's', 'root', 'proc')}","fsType":"proc".*start-up sweep removed a mount`),
        );
      } finally {
        await again.stop();
      }
    } finally {
      unmountAll(mountsUnder(realpathSync(real)));
      removeTree(dir);
    }
    expect(mountTable()).toBe(table);
  });
});

describe('one runner per state directory', () => {
  it('refuses a second runner on the same state directory, naming the first; a killed first blocks nothing', async () => {
    const first = await startRunner();
    const second = scratchDir('mountat-runner-');
    try {
      const state = join(first.dir, 'state');
      const refused = await startRunner({ stateDirectory: state }, second).then(
        () => 'started',
        (error: unknown) => messageOf(error),
      );
      // The helper's "runner exited: " and then the runner's output: one line of error.
      const lines = refused
        .replace(/^runner exited: /, '')
        .split('\n')
        .filter((line) => line.startsWith('mountat:'));
      expect(lines).toEqual([
        `mountat: state directory ${state} is in use by another runner (pid ${first.process.pid} on ${hostname()}, holding ${state}/runner.lock): give each runner its own stateDirectory`,
      ]);
      // The first still serves, its records untouched.
      expect(first.process.exitCode).toBe(null);
      expect(await first.stop('SIGKILL')).toBe(null);
      // The kernel dropped the lock with the process: the next runner starts at once.
      const next = await startRunner({ stateDirectory: state }, second);
      try {
        makeAction(next.build, 'n');
        expect((await run(next.client, requestFor('n', 'true'))).exitCode).toBe('0');
      } finally {
        await next.stop();
      }
    } finally {
      removeTree(first.dir);
      removeTree(second);
    }
  });
});
