// Facts about this kernel and process, for `mountat doctor` and for choosing a code path.
// Reports only; deciding what a missing feature means is the caller's business.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { ownCapabilities } from './capabilities.js';
import { constants as osConstants } from 'node:os';
import * as C from './constants.js';
import { fsopen, fsconfigSetFd, probeSyscall, statx } from './calls.js';
import { isErrno } from './syscall-error.js';

const ENOSYS = osConstants.errno.ENOSYS;

export interface SyscallPresence {
  name: string;
  present: boolean;
}

/** Which of the mount-API syscalls this kernel has (ENOSYS versus anything else). */
export function probeSyscalls(): SyscallPresence[] {
  const probes: Array<[string, () => number]> = [
    ['openat2', () => probeSyscall(C.SYS.openat2, 'long', -1, 'const char *', '', 'void *', null, 'size_t', 0)],
    ['open_tree', () => probeSyscall(C.SYS.open_tree, 'long', -1, 'const char *', '', 'long', 0)],
    ['move_mount', () => probeSyscall(C.SYS.move_mount, 'long', -1, 'const char *', '', 'long', -1, 'const char *', '', 'long', 0)],
    ['fsopen', () => probeSyscall(C.SYS.fsopen, 'const char *', '', 'long', 0)],
    ['fsconfig', () => probeSyscall(C.SYS.fsconfig, 'long', -1, 'long', 0, 'const char *', null, 'const char *', null, 'long', 0)],
    ['fsmount', () => probeSyscall(C.SYS.fsmount, 'long', -1, 'long', 0, 'long', 0)],
    ['mount_setattr', () => probeSyscall(C.SYS.mount_setattr, 'long', -1, 'const char *', '', 'long', 0, 'void *', null, 'size_t', 0)],
  ];
  return probes.map(([name, probe]) => ({ name, present: probe() !== ENOSYS }));
}

/** Whether statx reports the never-reused mount id (STATX_MNT_ID_UNIQUE, Linux 6.8+). */
export function probeUniqueMountId(): boolean {
  try {
    const st = statx(C.AT_FDCWD, '/', 0, C.STATX_MNT_ID_UNIQUE);
    return (st.mask & C.STATX_MNT_ID_UNIQUE) !== 0;
  } catch {
    return false;
  }
}

/** Whether /proc/thread-self/fd can be used to name an fd as a path (needed for unmount by fd). */
export function procFdAvailable(): boolean {
  return existsSync('/proc/thread-self/fd');
}

/** Whether capability number `bit` is in this process's effective set (undefined: cannot tell). */
export function hasCapability(bit: number): boolean | undefined {
  const own = ownCapabilities();
  return own === undefined ? undefined : ((own.effective >> BigInt(bit)) & 1n) === 1n;
}

/**
 * Whether proc accepts a `pidns` fd (a proc for another PID namespace; older kernels reject it):
 * tried on a throwaway filesystem context. Undefined when it cannot be tried (no privilege).
 */
export function probeProcPidns(): boolean | undefined {
  let nsfd: number;
  try {
    nsfd = openSync('/proc/self/ns/pid', 'r');
  } catch {
    return undefined;
  }
  try {
    using fsfd = fsopen('proc');
    fsconfigSetFd(fsfd, 'pidns', nsfd);
    return true;
  } catch (error) {
    if (isErrno(error, 'EINVAL')) return false;
    return undefined;
  } finally {
    closeSync(nsfd);
  }
}

/**
 * Whether pivot_root(2) may be called here: called with empty paths, the kernel answers ENOENT;
 * a seccomp profile that refuses it (Docker's default does) answers EPERM first. (Only meaningful
 * with CAP_SYS_ADMIN, whose absence is EPERM too.)
 */
export function probePivotRoot(): 'allowed' | 'refused' {
  const errno = probeSyscall(C.SYS.pivot_root, 'const char *', '', 'const char *', '');
  return errno === osConstants.errno.EPERM ? 'refused' : 'allowed';
}

/** This process's user namespace: the host's (the identity map of every uid) or another, with its uid map's lines. */
export function userNamespaceOf(uidMap?: string): { initial: boolean; uidMap: string[] } {
  let text = uidMap;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/uid_map', 'utf8');
    } catch {
      text = '';
    }
  }
  const lines = text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).join(' '))
    .filter((line) => line !== '');
  return { initial: lines.length === 1 && lines[0] === '0 0 4294967295', uidMap: lines };
}

/** Whether `id` is mapped in this user namespace's uid_map (or gid_map) text. */
export function idMapped(mapText: string, id: number): boolean {
  return mapText
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .some(([inside, , count]) => inside !== undefined && count !== undefined && id >= inside && id < inside + count);
}
