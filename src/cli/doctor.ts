// `mountat doctor [--dir DIR]`: can this host run mountat? One line per check; each problem
// says what to do. Nothing is mounted: the trial mount is made detached and dissolves on close.
import { existsSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { errnoCodeOf, messageOf } from '../base/index.js';
import {
  constants as C,
  fsconfigCreate,
  fsconfigSetString,
  fsmount,
  fsopen,
  CAPABILITIES,
  capabilityMask,
  hasCapability,
  isErrno,
  ownCapabilities,
  probePivotRoot,
  probeProcPidns,
  probeSyscalls,
  probeUniqueMountId,
  procFdAvailable,
  statx,
  userNamespaceOf,
} from '../linux/index.js';
import { readMountInfo } from '../mounts/index.js';
import { actionCapabilities, probeCgroups, SANDBOX_DEFAULTS, STARTER_PATH, type CgroupProbe, type ControllerName } from '../sandbox/index.js';
import { UsageError } from './usage-error.js';

type Level = 'ok' | 'warn' | 'fail';

export interface Check {
  level: Level;
  what: string;
  advice?: string;
  /** Its entry in docs/operations.md's Troubleshooting. */
  see?: string;
}

const TROUBLESHOOTING = 'docs/operations.md#t-';

function trialMount(): Check {
  try {
    using fsfd = fsopen('tmpfs');
    fsconfigSetString(fsfd, 'source', 'tmpfs');
    fsconfigCreate(fsfd);
    fsmount(fsfd, 0).close();
    return { level: 'ok', what: 'a trial tmpfs can be created (fsopen, fsconfig, fsmount)' };
  } catch (error) {
    return {
      level: 'fail',
      what: `a trial tmpfs cannot be created: ${messageOf(error)}`,
      advice: 'run as root or with CAP_SYS_ADMIN; in a container, grant CAP_SYS_ADMIN and allow the mount syscalls in its seccomp profile',
      see: `${TROUBLESHOOTING}eperm`,
    };
  }
}

function propagationOf(dir: string): Check {
  let id: string;
  try {
    id = statx(C.AT_FDCWD, dir, 0, C.STATX_MNT_ID).mountId.toString();
  } catch (error) {
    return { level: 'fail', what: `${dir}: ${messageOf(error)}`, advice: 'give an existing directory' };
  }
  const entry = readMountInfo().find((mount) => mount.id === id);
  if (!entry) return { level: 'warn', what: `${dir}: its mount (id ${id}) is not in this namespace's mountinfo` };
  const tags = entry.propagation.length > 0 ? entry.propagation.join(' ') : 'private';
  const shared = entry.propagation.some((tag) => tag.startsWith('shared:'));
  return {
    level: 'ok',
    what: `${dir} is on ${entry.fsType} mounted at ${entry.mountPoint}, propagation ${tags}`,
    ...(shared ? { advice: 'mounts made below it propagate to its peers (other namespaces sharing it)' } : {}),
    see: `${TROUBLESHOOTING}propagation`,
  };
}

/** The hierarchies a probe problem names ("memory: cannot make…"); every one when it names none. */
function failingHierarchies(probe: CgroupProbe): Set<string> | 'all' {
  if (probe.problem === undefined) return new Set();
  const known = new Set(['unified', ...Object.keys(probe.parents)]);
  const named = probe.problem
    .split('; ')
    .map((part) => part.slice(0, part.indexOf(': ')))
    .filter((name) => known.has(name) || /^[a-z_=,]+$/.test(name));
  return named.length > 0 ? new Set(named) : 'all';
}

/** Whether `controller` is where the runner could use it: placed, and its hierarchy not failing. */
function usable(probe: CgroupProbe, failing: Set<string> | 'all', controller: ControllerName): boolean {
  const where = probe.controllers[controller];
  if (where === null || failing === 'all') return false;
  if (where === 'v2') return !failing.has('unified');
  const v1 = controller === 'io' ? 'blkio' : controller;
  return ![...failing].some((name) => name.split(',').includes(v1));
}

/** What to do about a probe's problem, by what the kernel said. */
function cgroupAdvice(probe: CgroupProbe): string {
  const problem = probe.problem ?? '';
  if (probe.layout === 'none') return 'mount the cgroup file system (cgroup2 at /sys/fs/cgroup); a container gets it from its engine';
  if (/EROFS/.test(problem))
    return "the cgroup file system is mounted read-only here (a container's default): remount it writable in this mount namespace, as the runner image's entrypoint does (`mount -o remount,bind,rw` on each cgroup mount: CAP_SYS_ADMIN)";
  if (/EACCES|EPERM/.test(problem)) return 'run as root, or set cgroupParent to a cgroup delegated to this user';
  if (/is not in/.test(problem))
    return 'run it in a cgroup namespace of its own (docker and podman: --cgroupns=private), or set cgroupParent to a cgroup it can see';
  return "make a cgroup below the runner's own (or cgroupParent) possible";
}

const LAYOUTS: Record<CgroupProbe['layout'], string> = {
  v2: 'cgroup v2',
  hybrid: 'hybrid (a cgroup v2 tree beside v1 hierarchies)',
  v1: 'cgroup v1',
  none: 'none (no cgroup file system is mounted here)',
};

/** The limits of the runner's config, by the controller each needs. */
const LIMITS: Array<[string, ControllerName]> = [
  ['pids', 'pids'],
  ['memoryBytes', 'memory'],
  ['cpu', 'cpu'],
];

/**
 * cgroups, as the runner would use them (docs/cgroups.md): the layout and where each controller is, whether a
 * cgroup can be made below the runner's own in every tree, and what that leaves of the limits. Warnings, not
 * failures: mounts and hooks need no cgroup, and a runner configured without limits still runs.
 */
function cgroupChecks(): Check[] {
  const probe = probeCgroups();
  const controllers = (['pids', 'memory', 'cpu', 'io'] as const).map((c) => `${c} ${probe.controllers[c] ?? 'none'}`).join(', ');
  const checks: Check[] = [{ level: probe.layout === 'none' ? 'warn' : 'ok', what: `cgroups: ${LAYOUTS[probe.layout]}; controllers: ${controllers}` }];
  checks.push(
    probe.problem === undefined
      ? {
          level: 'ok',
          what: `the runner can make its actions' cgroups below ${Object.values(probe.parents).join(', ')} (a trial cgroup made and removed in each)`,
        }
      : { level: 'warn', what: `the runner cannot make its actions' cgroups: ${probe.problem}`, advice: cgroupAdvice(probe), see: `${TROUBLESHOOTING}cgroups` },
  );
  const failing = failingHierarchies(probe);
  const can = LIMITS.filter(([, c]) => usable(probe, failing, c)).map(([name]) => name);
  const cannot = LIMITS.filter(([, c]) => !usable(probe, failing, c)).map(
    ([name, c]) => `${name} (${probe.controllers[c] === null ? `no ${c} controller` : `no cgroup can be made in its ${c} hierarchy`})`,
  );
  if (cannot.length === 0) {
    const oom = probe.controllers.memory === 'v2' ? 'memory.oom.group' : 'v1 has no memory.oom.group: the runner kills the rest';
    checks.push({ level: 'ok', what: `limits can be enforced: ${can.join(', ')}; an OOM kill ends the whole action (${oom})` });
    return checks;
  }
  const noController = probe.layout === 'v2' && LIMITS.some(([, c]) => probe.controllers[c] === null);
  checks.push({
    level: 'warn',
    what: `limits that cannot be enforced here: ${cannot.join(', ')}${can.length > 0 ? `; can: ${can.join(', ')}` : ''}`,
    advice: `${noController ? "enable the missing controllers for this process's cgroup (its parent's cgroup.subtree_control; systemd: Delegate=yes); " : ''}a runner configured with one of them refuses to start; without, it runs and says once what it cannot do (the default pids limit included)`,
    see: `${TROUBLESHOOTING}cgroups`,
  });
  return checks;
}

/** A new file system of `type` made and mounted detached here, then dissolved: undefined, or why it was refused. */
function trialFilesystem(type: 'proc' | 'sysfs'): unknown {
  try {
    using fsfd = fsopen(type);
    fsconfigCreate(fsfd);
    // fsmount is where the kernel weighs a new proc against what this mount namespace already shows
    // (mount_too_revealing); nosuid, nodev, noexec as the engine mounts them.
    fsmount(fsfd, C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC).close();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** The mounts over /proc's entries in this mount namespace: a container's masks and read-only covers. */
function procCovers(): string[] {
  return readMountInfo()
    .filter((mount) => mount.mountPoint.startsWith('/proc/') && !/^\/proc\/sys\/fs\/binfmt_misc$/.test(mount.mountPoint))
    .map((mount) => mount.mountPoint);
}

const UNMASK = 'podman --security-opt unmask=ALL; Kubernetes securityContext.procMount: Unmasked, with hostUsers: false';

/**
 * The user namespace, and what the kernel refuses in one that is not the host's (docs/operations.md, "Without the
 * host's privileges"): a new proc where this /proc is masked, a new sysfs where the network namespace belongs to
 * another user namespace. Each tried for real; nothing stays mounted.
 */
function userNamespaceChecks(): Check[] {
  const userns = userNamespaceOf();
  const see = `${TROUBLESHOOTING}userns`;
  if (userns.initial) {
    return [
      {
        level: 'ok',
        what: "user namespace: the host's (capabilities held here are the host's; an escaped action would be a uid of the host)",
      },
    ];
  }
  const checks: Check[] = [
    {
      level: 'ok',
      what: `user namespace: not the host's, uid map ${userns.uidMap.join(', ')} (capabilities held here hold only in it; uid 0 here is uid ${hostUidOfRoot(userns.uidMap)} on the host)`,
      see,
    },
  ];
  const proc = trialFilesystem('proc');
  if (proc === undefined) {
    checks.push({ level: 'ok', what: '/proc is fully visible here: a new proc can be mounted (a trial made and dissolved)' });
  } else if (isErrno(proc, 'EPERM')) {
    const covers = procCovers();
    checks.push({
      level: 'warn',
      what: `/proc is masked here${covers.length > 0 ? ` (${covers.length} mounts over its entries: ${covers.slice(0, 4).join(', ')}${covers.length > 4 ? ', …' : ''})` : ''}: the kernel refuses a new proc in this user namespace`,
      advice: `run the container with an unmasked /proc (${UNMASK})`,
      see,
    });
  } else {
    checks.push({ level: 'warn', what: `a trial proc cannot be mounted: ${messageOf(proc)}` });
  }
  const sysfs = trialFilesystem('sysfs');
  if (sysfs === undefined) {
    checks.push({ level: 'ok', what: 'sysfs can be mounted here (the network namespace belongs to this user namespace)' });
  } else if (isErrno(sysfs, 'EPERM')) {
    checks.push({
      level: 'warn',
      what: "a new sysfs is refused here (the network namespace belongs to another user namespace): the container's /sys will be bound read-only instead",
      advice: 'give the container a network namespace of its own, made with its user namespace (pods and `podman run` without --network host do)',
      see,
    });
  } else {
    checks.push({ level: 'warn', what: `a trial sysfs cannot be mounted: ${messageOf(sysfs)}` });
  }
  checks.push(
    proc === undefined
      ? {
          level: 'ok',
          what: `the runner and \`mountat exec\` can start actions here, and the OCI hooks mount proc, sysfs${sysfs === undefined ? '' : ' (as a bind of /sys)'} and tmpfs; runCommandsAs must name ids the uid map maps, and cgroup limits need a cgroup delegated to this namespace (else the runner runs without, saying so once)`,
          see,
        }
      : {
          level: 'warn',
          what: 'the runner and `mountat exec` fail every action here (each mounts a new proc), and so does an OCI hook whose plan has proc',
          advice: `unmask /proc (${UNMASK})`,
          see,
        },
  );
  return checks;
}

/** The host's uid of uid 0 in this namespace, from its uid map's lines ("inside outside count"); "unmapped" if none. */
function hostUidOfRoot(uidMap: string[]): string {
  for (const line of uidMap) {
    const [inside, outside, count] = line.split(' ').map(Number);
    if (inside !== undefined && outside !== undefined && count !== undefined && inside === 0 && count > 0) return String(outside);
  }
  return 'unmapped';
}

export function runChecks(dir?: string): Check[] {
  const checks: Check[] = [{ level: 'ok', what: `kernel ${release()}, ${process.arch}, node ${process.version}` }];
  for (const { name, present } of probeSyscalls()) {
    checks.push(
      present
        ? { level: 'ok', what: `syscall ${name}` }
        : {
            level: 'fail',
            what: `syscall ${name} is missing`,
            advice: 'mountat needs Linux 5.12 or newer (openat2 5.6, the mount API 5.2, mount_setattr 5.12)',
          },
    );
  }
  checks.push(
    probeUniqueMountId()
      ? { level: 'ok', what: 'statx gives unique mount ids (STATX_MNT_ID_UNIQUE)' }
      : {
          level: 'warn',
          what: 'statx has no unique mount ids; reusable ids are compared instead',
          advice: "Linux 6.8+ makes teardown's ownership check exact",
        },
  );
  const cap = hasCapability(CAPABILITIES.CAP_SYS_ADMIN);
  checks.push(
    cap === true
      ? { level: 'ok', what: 'CAP_SYS_ADMIN is effective' }
      : cap === false
        ? {
            level: 'fail',
            what: 'CAP_SYS_ADMIN is not effective',
            advice: 'run as root or add CAP_SYS_ADMIN (there is no narrower capability for mounting)',
            see: `${TROUBLESHOOTING}eperm`,
          }
        : { level: 'warn', what: 'capabilities unknown (no /proc/self/status)' },
  );
  // Only `exec` and the runner start actions; the OCI hooks and `mount` do not, so warnings.
  const own = ownCapabilities();
  if (own && (own.effective & capabilityMask(['CAP_SETPCAP'])) === 0n) {
    checks.push({
      level: 'warn',
      what: "CAP_SETPCAP is not effective: `mountat exec` and the runner cannot reduce an action's capabilities, and refuse to start",
      advice: 'add CAP_SETPCAP where actions are run (a container that drops ALL must add it back)',
    });
  }
  const lacking = actionCapabilities(SANDBOX_DEFAULTS.capabilities, own).lacking;
  if (lacking.length > 0) {
    checks.push({
      level: 'warn',
      what: `actions running as root will lack ${lacking.join(', ')} (not in this process's bounding set)`,
      advice: 'add them where actions are run if builds need them (chown, writing read-only files)',
    });
  }
  checks.push(
    existsSync(STARTER_PATH)
      ? { level: 'ok', what: `the action starter is at ${STARTER_PATH}` }
      : { level: 'fail', what: `the action starter ${STARTER_PATH} is missing (needed by \`mountat exec\` and the runner)`, advice: 'npm run build' },
  );
  checks.push(
    procFdAvailable()
      ? { level: 'ok', what: '/proc is mounted here: unmount goes through /proc/thread-self/fd' }
      : { level: 'warn', what: '/proc is not mounted here: unmount falls back to fchdir', advice: 'mount proc in the namespace mountat runs in' },
  );
  checks.push(trialMount());
  checks.push(...userNamespaceChecks());
  if (probePivotRoot() === 'allowed') {
    checks.push({ level: 'ok', what: 'pivot_root is allowed: actions are rooted with nothing of this filesystem left beneath them' });
  } else if (hasCapability(CAPABILITIES.CAP_SYS_CHROOT) !== false) {
    checks.push({
      level: 'ok',
      what: 'pivot_root is refused (a seccomp profile): actions are chrooted into their root over this one instead, out of reach beneath it',
      see: `${TROUBLESHOOTING}pivot-root`,
    });
  } else {
    checks.push({
      level: 'warn',
      what: 'pivot_root is refused (a seccomp profile) and CAP_SYS_CHROOT is not effective: `mountat exec` and the runner cannot root actions, and refuse to start',
      advice: 'add CAP_SYS_CHROOT, or allow pivot_root in the seccomp profile',
      see: `${TROUBLESHOOTING}pivot-root`,
    });
  }
  const pidns = probeProcPidns();
  checks.push(
    pidns === true
      ? { level: 'ok', what: 'proc accepts a pidns fd (a proc for another PID namespace)' }
      : {
          level: 'warn',
          what: pidns === false ? 'proc does not accept a pidns fd on this kernel' : 'proc pidns support unknown',
          advice: "a proc mounted from outside a PID namespace then shows the host's processes",
        },
  );
  checks.push(...cgroupChecks());
  if (dir !== undefined) checks.push(propagationOf(dir));
  return checks;
}

/** --dir names the directory to check: one that is not there is a mistake in the call, not the host's. */
function checkDirArgument(dir: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (error) {
    const code = errnoCodeOf(error) ?? 'error';
    const why: Record<string, string> = {
      ENOENT: 'does not exist',
      ENOTDIR: 'passes through something that is not a directory',
      EACCES: 'permission denied',
      ELOOP: 'has too many symlinks',
    };
    throw new UsageError(`--dir ${JSON.stringify(dir)}: ${why[code] ?? 'cannot be looked up'} (${code})`);
  }
  if (!isDirectory) throw new UsageError(`--dir ${JSON.stringify(dir)}: is not a directory`);
}

export function doctorCommand(args: { dir: string | undefined }, out: (line: string) => void): number {
  if (args.dir !== undefined) checkDirArgument(args.dir);
  const checks = runChecks(args.dir);
  for (const check of checks) {
    const see = check.see ? ` (see ${check.see})` : '';
    out(`${check.level.padEnd(4)} ${check.what}${check.advice ? ` — ${check.advice}` : ''}${see}`);
  }
  const failed = checks.filter((check) => check.level === 'fail').length;
  out(failed === 0 ? 'this host can run mountat' : `${failed} problem(s): this host cannot run mountat as it is`);
  return failed === 0 ? 0 : 1;
}
