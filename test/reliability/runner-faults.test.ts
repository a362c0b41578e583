// Faults inside an action's life, through a real runner: hooks that hang or die, an action that
// leaves processes behind, fills its tmpfs, unmounts or stacks mounts over ours, a read-only build
// directory. Each ends with a clear status and nothing leaked.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { mountTable, mountsUnder, removeTree, scratchDir } from '../helpers/roots.js';
import { makeAction, requestFor, run, startRunner } from '../helpers/runner.js';

async function withRunner(
  config: object,
  body: (runner: Awaited<ReturnType<typeof startRunner>>) => Promise<void>,
  dir = scratchDir('mountat-runner-'),
): Promise<void> {
  const table = mountTable();
  const runner = await startRunner(config, dir);
  try {
    await body(runner);
    expect(mountsUnder(runner.build)).toEqual([]);
  } finally {
    await runner.stop();
    removeTree(runner.dir);
  }
  expect(mountTable()).toBe(table);
}

describe('hooks that misbehave', () => {
  it('a prestart hook that hangs past its timeout fails the action, and is killed with what it started', async () => {
    const dir = scratchDir('mountat-runner-');
    const hook = join(dir, 'hangs');
    writeFileSync(hook, '#!/bin/sh\nsleep 66.1 &\nexec sleep 66.2\n', { mode: 0o755 });
    await withRunner(
      { hooks: { prestart: ['mountat', { path: hook, args: ['hangs'], timeout: 1 }], poststop: ['mountat'] } },
      async (runner) => {
        makeAction(runner.build, 'h');
        await expect(run(runner.client, requestFor('h', 'echo ran'))).rejects.toMatchObject({
          code: status.FAILED_PRECONDITION,
          details: `setting up the action failed: prestart hook #1 (${hook}) timed out after 1s and was killed`,
        });
        expect(readFileSync(join(runner.build, 'h', 'stdout'), 'utf8')).toBe('');
        expect(spawnSync('pgrep', ['-f', 'sleep 66.[12]']).status).toBe(1);
      },
      dir,
    );
  });

  it('a prestart hook that dies mid-way fails the action with the signal named', async () => {
    const dir = scratchDir('mountat-runner-');
    const hook = join(dir, 'dies');
    writeFileSync(hook, '#!/bin/sh\necho "half done" >&2\nkill -9 $$\n', { mode: 0o755 });
    await withRunner(
      { hooks: { prestart: ['mountat', { path: hook, args: ['dies'] }], poststop: ['mountat'] } },
      async (runner) => {
        makeAction(runner.build, 'd');
        await expect(run(runner.client, requestFor('d', 'echo ran'))).rejects.toMatchObject({
          code: status.FAILED_PRECONDITION,
          details: `setting up the action failed: prestart hook #1 (${hook}) was killed by SIGKILL: half done`,
        });
      },
      dir,
    );
  });
});

describe('actions that misbehave', () => {
  it('leaves processes behind holding /tmp busy: they are killed and /tmp comes off', async () => {
    await withRunner({}, async (runner) => {
      makeAction(runner.build, 'bg');
      const response = await run(runner.client, requestFor('bg', 'cd /tmp && (sleep 67.1 &) && sleep 67.2 > /tmp/held & echo left'));
      expect(response.exitCode).toBe('0');
      expect(spawnSync('pgrep', ['-f', 'sleep 67.[12]']).status).toBe(1);
    });
  });

  it('fills a capped tmpfs: ENOSPC for the action, a normal teardown', async () => {
    await withRunner(
      {
        temporaryDirectoryMount: null,
        mounts: [
          { target: 'proc', kind: 'proc' },
          { target: 'tmp', kind: 'tmpfs', options: { size: '1m' } },
        ],
      },
      async (runner) => {
        makeAction(runner.build, 'full');
        const response = await run(runner.client, requestFor('full', 'yes | head -c 4194304 > /tmp/big; echo "rc=$?"; wc -c < /tmp/big'));
        expect(response.exitCode).toBe('0');
        const [rc, size] = readFileSync(join(runner.build, 'full', 'stdout'), 'utf8')
          .trim()
          .split('\n');
        expect(rc).not.toBe('rc=0');
        expect(Number(size)).toBeLessThanOrEqual(1024 * 1024);
      },
    );
  });

  it('unmounts our /sys and stacks its own mounts on /proc and /tmp: refused; and where an operator grants CAP_SYS_ADMIN, all in its own namespace, ours come off as made', async () => {
    const script = 'umount -l /sys && mount -t tmpfs mine /proc && mount -t tmpfs mine2 /tmp && mount -t tmpfs mine3 /tmp && echo done';
    await withRunner({}, async (runner) => {
      makeAction(runner.build, 'refused');
      const response = await run(runner.client, requestFor('refused', `{ ${script}; } 2>&1`));
      expect(response.exitCode).toBe('1');
      expect(readFileSync(join(runner.build, 'refused', 'stdout'), 'utf8')).toMatch(/^umount: can't unmount \/sys: Operation not permitted\n$/);
      expect(readdirSync(join(runner.build, 'refused', 'root')).sort()).toEqual(['bin', 'usr']);
    });
    await withRunner({ capabilities: ['CAP_SYS_ADMIN'] }, async (runner) => {
      makeAction(runner.build, 'm');
      const response = await run(runner.client, requestFor('m', script));
      expect(response.exitCode).toBe('0');
      expect(readFileSync(join(runner.build, 'm', 'stdout'), 'utf8')).toBe('done\n');
      // Nothing of the action's came back to the runner's namespace to be peeled off ours.
      expect(runner.output()).not.toMatch(/"stacked":\["/);
      expect(readdirSync(join(runner.build, 'm', 'root')).sort()).toEqual(['bin', 'usr']);
      expect(runner.output()).not.toMatch(/"teardown failed/);
    });
  });

  it('tries to remove its mountpoints: refused by the kernel (EBUSY), teardown unaffected', async () => {
    await withRunner({}, async (runner) => {
      makeAction(runner.build, 'r');
      const response = await run(runner.client, requestFor('r', 'rmdir /proc /sys /tmp 2>&1 | grep -ci "busy"'));
      expect(readFileSync(join(runner.build, 'r', 'stdout'), 'utf8')).toBe('3\n');
      expect(response.exitCode).toBe('0');
    });
  });
});

describe('a read-only build directory', () => {
  it('answers INVALID_ARGUMENT naming EROFS, mounting nothing', async () => {
    const table = mountTable();
    const dir = scratchDir('mountat-runner-');
    const build = join(dir, 'build');
    makeAction(build, 'ro');
    // Read-only before the runner opens it: the runner holds the build directory by its fd.
    execFileSync('mount', ['--bind', '-o', 'ro', build, build]);
    const runner = await startRunner({}, dir);
    try {
      await expect(run(runner.client, requestFor('ro', 'echo ran'))).rejects.toMatchObject({
        code: status.INVALID_ARGUMENT,
        details: 'stdout_path "ro/stdout" is on a read-only filesystem (EROFS)',
      });
      expect(mountsUnder(build)).toEqual([build]);
    } finally {
      await runner.stop();
      execFileSync('umount', [build]);
      removeTree(dir);
    }
    expect(mountTable()).toBe(table);
  });
});
