// One action in-process (runAction with the real starter and the built-in hooks), where a record
// write must fail at one exact step: the store wraps the real one and throws there (the only
// fake). The mounts, the root and the failure of the undo are real.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeError, kindOf } from '../src/base/index.js';
import { ownCapabilities, probePivotRoot, probeProcPidns } from '../src/linux/index.js';
import { parsePlan, RecordStore, type Attachment, type RecordKeeping } from '../src/mounts/index.js';
import { runAction } from '../src/runner/action.js';
import { BuildDirectory } from '../src/runner/build-directory.js';
import { RUNNER_DEFAULTS } from '../src/runner/config.js';
import { poststopSteps, prestartHooks } from '../src/runner/hooks.js';
import { silentObserver } from '../src/runner/observer.js';
import { prepareIsolation, SANDBOX_DEFAULTS, StarterServer } from '../src/sandbox/index.js';
import { overriding } from './helpers/checked.js';
import { mountsUnder, removeTree, repo, scratchDir } from './helpers/roots.js';
import { makeAction, requestFor } from './helpers/runner.js';

let dir: string;
let root: string;
let stateDir: string;
beforeEach(() => {
  // The input root on a bind mount of its own, so that it can be made read-only (its action's
  // stdout and stderr, open for writing, are outside it).
  dir = scratchDir('mountat-action-');
  makeAction(dir, 'a');
  root = join(dir, 'a', 'root');
  execFileSync('mount', ['--bind', root, root]);
  stateDir = scratchDir('mountat-action-state-');
});
afterEach(() => {
  execFileSync('mount', ['-o', 'remount,bind,rw', root]);
  execFileSync('umount', [root]);
  removeTree(dir);
  removeTree(stateDir);
});

/**
 * The real store. The write recording all `mounts` makes the input root read-only and fails,
 * so the rollback unmounts everything but cannot remove its directories; the next read of the
 * record (the failure passing) makes it writable again.
 */
function failingStore(store: RecordStore, mounts: number): RecordKeeping {
  const setReadOnly = (on: boolean) => execFileSync('mount', ['-o', `remount,bind,${on ? 'ro' : 'rw'}`, root]);
  return {
    load: (key) => (setReadOnly(false), store.load(key)),
    remove: (key) => store.remove(key),
    pathFor: (key) => store.pathFor(key),
    journal: (key) => {
      const journal = store.journal(key);
      const append = (line: Attachment & Record<string, unknown>) => {
        if (line.mounts.length >= mounts) {
          setReadOnly(true);
          throw new Error('write: ENOSPC (no space left on the state directory)');
        }
        journal.append(line);
      };
      return overriding(journal, { append, close: () => journal.close() });
    },
  };
}

// In place, the rollback of the failed setup fails too (EROFS) and the undo tries again; on a
// detached copy of the root nothing is rolled back: the copy's close takes the mounts, the undo the directories.
it.each([
  { mountOnCopy: false, rollback: /; rollback also failed: .*EROFS/ },
  { mountOnCopy: true, rollback: /$/ },
])(
  'a failed setup (mountOnCopy $mountOnCopy) whose undo was incomplete is retried at poststop: no record, directory or mount is left for the next start',
  async ({ mountOnCopy, rollback }) => {
    const { isolation } = prepareIsolation(
      {
        rooted: true,
        pidNamespace: true,
        network: 'none',
        capabilities: [...SANDBOX_DEFAULTS.capabilities],
        runAs: undefined,
        userNamespaces: false,
        allowSyscalls: [],
      },
      { own: ownCapabilities(), pivotRoot: probePivotRoot(), procPidns: probeProcPidns() === true },
    );
    const plan = parsePlan({ mounts: structuredClone(RUNNER_DEFAULTS.mounts) });
    // proc, sysfs and the temporary directory's bind: the third is the last write.
    const mounts = { plan, temporaryDirectoryMount: 'tmp', records: failingStore(new RecordStore(stateDir), plan.mounts.length + 1), observer: silentObserver };
    const build = BuildDirectory.open(dir);
    // The starter as built (dist/), which src/ does not hold.
    const starterServer = new StarterServer(join(repo, 'dist', 'mountat-action'));
    try {
      const settings = {
        build,
        starterServer,
        setTmpdir: true,
        temporaryDirectoryMount: 'tmp',
        isolation,
        mountOnCopy,
        prestart: prestartHooks(['mountat'], mounts),
        poststop: poststopSteps(['mountat']),
      };
      const error = await runAction(requestFor('a', 'true'), settings, new AbortController().signal, () => {}).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(kindOf(error)).toBe('precondition');
      expect(describeError(error)).toMatch(
        new RegExp(
          /^setting up the action failed: built-in mountat prestart hook: (cannot write the record .*action-a\.json: )?write: ENOSPC [^;]*/.source +
            rollback.source,
        ),
      );
    } finally {
      build.fd.close();
      starterServer.close();
    }
    expect(mountsUnder(root)).toEqual([root]);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
    expect(readdirSync(stateDir)).toEqual([]);
  },
);
