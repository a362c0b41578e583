// Races on the input root while the engine resolves and mounts: a concurrent process swaps the
// target directory for a symlink out of the root and back, as fast as it can (no process started
// per swap, so the race happens on a quiet machine as on a loaded one). The engine
// resolves with RESOLVE_NO_SYMLINKS and mounts onto the fd it resolved, so a swap can only make
// it refuse (ELOOP/ENOENT) or mount on the very directory it resolved, wherever that now is
// inside the root; never outside.
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messageOf } from '../../src/base/index.js';
import { attach, detach, DetachError, parsePlan } from '../../src/mounts/index.js';
import { busyboxRoot, mountTable, mountsUnder, openDir, removeTree, repo, scratchDir } from '../helpers/roots.js';

describe('races', () => {
  it('a directory swapped for a symlink out of the root during 500+ attaches never sends a mount outside', { timeout: 120_000 }, async () => {
    const root = busyboxRoot();
    const outside = scratchDir('mountat-race-outside-');
    writeFileSync(join(outside, 'precious'), 'x');
    const before = mountTable();
    const plan = parsePlan({
      mounts: [
        { target: 'tmp', kind: 'tmpfs' },
        { target: 'a/b', kind: 'tmpfs' },
      ],
    });
    // The racer: a process swapping tmp and a (the parent of a/b) for symlinks to the outside, in
    // a tight loop of system calls (test/fixtures/swap-racer.mjs).
    const racer = spawn(process.execPath, [join(repo, 'test/fixtures/swap-racer.mjs'), root, outside], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    // Attach only once it races: a racer still starting (or failed to) would make every attach win.
    await new Promise<void>((resolve, reject) => {
      racer.stdout.once('data', () => resolve());
      racer.once('exit', (code) => reject(new Error(`the racer exited with ${code} before racing`)));
    });
    // Why each attach was refused (the errno of the lookup the swap broke), and what detach met.
    const results = { attached: 0, refused: 0, refusedBy: {} as Record<string, number>, foundMoved: 0, dirsRefused: 0 };
    try {
      using rootFd = openDir(root);
      // At least 500 attempts, and on until both kinds of race were seen and an attach got through
      // (a cap, not a timing).
      const raced = () =>
        (results.refusedBy.ELOOP ?? 0) > 0 && (results.refusedBy.moved ?? 0) + results.foundMoved + results.dirsRefused > 0 && results.attached > 0;
      for (let i = 0; i < 500 || (!raced() && i < 5000); i++) {
        let attachment;
        try {
          attachment = attach(rootFd, plan);
        } catch (error) {
          // Only the swap may refuse: a lookup meeting a symlink where a directory was (ELOOP:
          // the swap won before the attach reached it) or the name gone mid-swap, or the mount
          // made onto a directory the swap moved away meanwhile (found and undone: "moved").
          const message = messageOf(error);
          const code = /the target directory was moved while it was being mounted; mount undone$/.test(message)
            ? 'moved'
            : /: (ELOOP|ENOENT|ENOTDIR)\b/.exec(message)?.[1];
          expect(code, message).toBeDefined();
          results.refusedBy[code!] = (results.refusedBy[code!] ?? 0) + 1;
          results.refused++;
          continue;
        }
        results.attached++;
        const mine = mountsUnder('/').filter((point) => !before.includes(` ${point} `));
        for (const point of mine) expect(point.startsWith(`${root}/`), point).toBe(true);
        // Teardown happens once the action is over, with nothing racing (in the runner the action's
        // processes are gone by then): stop the racer wherever it is. It may have renamed a parent
        // of a mount by now; detach finds such a mount by its id, beneath the root.
        process.kill(-racer.pid!, 'SIGSTOP');
        let report;
        try {
          report = detach(rootFd, attachment);
        } catch (error) {
          // Stopped mid-swap, the racer can leave a symlink where a directory attach created
          // was: every mount is still gone, and removing the directory is refused, never
          // followed. That is the only problem allowed.
          if (!(error instanceof DetachError)) throw error;
          for (const problem of error.report.problems) expect(problem).toMatch(/^remove `a(\/b)?`: openat2 `a(\/b)?`: (ELOOP|ENOENT)$/);
          report = error.report;
          results.dirsRefused++;
        }
        results.foundMoved += report.moved?.length ?? 0;
        expect(mountsUnder(root)).toEqual([]);
        process.kill(-racer.pid!, 'SIGCONT');
      }
    } finally {
      process.kill(-racer.pid!, 'SIGKILL');
      await new Promise((resolve) => racer.once('exit', resolve));
    }
    console.log(`races: ${JSON.stringify({ attempts: results.attached + results.refused, ...results })}`);
    expect(mountTable()).toBe(before);
    expect(readdirSync(outside)).toEqual(['precious']);
    expect(lstatSync(join(outside, 'precious')).isFile()).toBe(true);
    // Races did happen, both ways: the swap won before an attach (the kernel refused the symlink:
    // ELOOP), and it moved a target while or after it was mounted (the attach found and undid
    // that mount, or detach found a mount by id elsewhere, or met the symlink). And attaches did
    // get through, so the checks above saw real mounts.
    expect(results.refusedBy.ELOOP ?? 0).toBeGreaterThan(0);
    expect((results.refusedBy.moved ?? 0) + results.foundMoved + results.dirsRefused).toBeGreaterThan(0);
    expect(results.attached).toBeGreaterThan(0);
    removeTree(root);
    removeTree(outside);
  });
});
