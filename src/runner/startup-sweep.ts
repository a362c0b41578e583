// Which mounts below the build directory the start-up sweep may take: only those this runner's
// built-in hook could have made, i.e. all of
//   - in an input-root position: <build>/<action directory>/root/<target>, the layout bb_worker
//     gives every action (FACTS.md, Buildbarn); a mount anywhere else (a cache bind at
//     <build>/cache, a worker's own mount) is not the runner's;
//   - at a target the plan names (the configured mounts, and the temporary directory's bind);
//     a bind of /usr that whoever prepared the input root made at <id>/root/usr is not;
//   - of the kind the plan makes there: proc, sysfs, tmpfs by filesystem type; a bind by the
//     identity of its root, which must be the configured source's (or, for the temporary
//     directory, a directory of the action's own directory, where bb_worker puts it).
// Mounts inside one of these (the covers of a hardened proc or sysfs) go with it (sweep.ts).
//
// External hooks' mounts are not taken: a hook is a command, and what it mounts is its own
// business (its poststop undoes it; `mountat-hook` keeps its own records). The runner cannot
// tell them from anyone else's, so they are left alone and logged like anything else. Without
// the built-in hook the runner makes no mounts at all, and the sweep takes nothing.
import { readdirSync } from 'node:fs';
import { MountatError } from '../base/index.js';
import { constants as C, type Fd, openat2, statx } from '../linux/index.js';
import { parsePlan, type PlannedMount, type Plan, type SweepCandidate, type SweepRule } from '../mounts/index.js';
import type { BuildDirectory } from './build-directory.js';

/** The input root's name in an action directory, as bb_worker lays it out. */
const INPUT_ROOT_NAME = 'root';

export interface SweepPolicy {
  plan: Plan;
  temporaryDirectoryMount: string | null;
  /** Whether the built-in "mountat" hook is configured: without it the runner mounts nothing. */
  builtinHook: boolean;
}

type Identity = { dev: string; ino: bigint };
type Matcher = (candidate: SweepCandidate, actionDirectory: string) => boolean;

const STRICT = C.RESOLVE_BENEATH | C.RESOLVE_NO_SYMLINKS | C.RESOLVE_NO_MAGICLINKS;

function same(a: Identity | undefined, b: Identity | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

function identityOf(dirFd: Fd | number, path: string, flags: number): Identity | undefined {
  try {
    const stat = statx(dirFd, path, flags, C.STATX_INO);
    return { dev: `${stat.devMajor}:${stat.devMinor}`, ino: stat.ino };
  } catch {
    return undefined;
  }
}

function matcherFor(mount: PlannedMount): Matcher {
  switch (mount.kind) {
    case 'proc':
    case 'sysfs':
    case 'tmpfs': {
      const fsType = mount.kind;
      return (candidate) => candidate.fsType === fsType;
    }
    case 'bind': {
      if (!('path' in mount.source)) return () => false; // an fd source exists only within one action
      const path = mount.source.path;
      let source: Identity | undefined | null = null;
      return (candidate) => {
        if (source === null) source = identityOf(C.AT_FDCWD, path, 0); // followed, as the engine opens it
        return same(candidate.root(), source);
      };
    }
    default: {
      const never: never = mount;
      throw new MountatError('internal', `unknown mount kind ${JSON.stringify(never)}`);
    }
  }
}

/** The temporary directory's bind: its root is one of the action directory's own entries. */
function temporaryDirectoryMatcher(build: BuildDirectory): Matcher {
  return (candidate, actionDirectory) => {
    const root = candidate.root();
    if (!root) return false;
    let fd: Fd;
    try {
      fd = openat2(build.fd, actionDirectory, { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: STRICT }, actionDirectory);
    } catch {
      return false;
    }
    try {
      return readdirSync(`/proc/thread-self/fd/${fd.fd}`).some((name) => same(root, identityOf(fd, name, C.AT_SYMLINK_NOFOLLOW)));
    } catch {
      return false;
    } finally {
      fd.close();
    }
  };
}

export function startupSweepRule(policy: SweepPolicy, build: BuildDirectory): SweepRule {
  if (!policy.builtinHook) return () => false;
  const targets = new Map<string, Matcher>(policy.plan.mounts.map((mount) => [mount.target, matcherFor(mount)]));
  if (policy.temporaryDirectoryMount !== null) {
    // Normalised as the hook's plan normalises it ("tmp/" is "tmp").
    const [temporary] = parsePlan({ mounts: [{ target: policy.temporaryDirectoryMount, kind: 'tmpfs' }] }).mounts;
    targets.set(temporary!.target, temporaryDirectoryMatcher(build));
  }
  return (candidate) => {
    const parts = candidate.relative.split('/');
    if (parts.length < 3 || parts[1] !== INPUT_ROOT_NAME) return false;
    const matcher = targets.get(parts.slice(2).join('/'));
    return matcher !== undefined && matcher(candidate, parts[0]!);
  };
}
