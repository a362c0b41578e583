// Moving one thread between mount and network namespaces: what a hook server's worker thread
// does for each request (src/oci/hook-server-worker.ts). No policy here.
// The kernel refuses setns(CLONE_NEWNS) to a task whose filesystem attributes (root, cwd, umask)
// are shared with other threads (EINVAL), which every Node thread's are: unshare(CLONE_FS) first
// gives the calling thread its own, and only it then moves. Network namespaces are per thread.
import { openat2 } from './calls.js';
import * as C from './constants.js';
import type { Fd, FdRef } from './fd.js';
import { koffi, lib } from './libc.js';
import { SyscallError } from './syscall-error.js';

export const CLONE_FS = 0x200;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWNET = 0x40000000;

function declare() {
  return {
    unshare: lib().func('int unshare(int flags)') as (flags: number) => number,
    setns: lib().func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
    umask: lib().func('uint32_t umask(uint32_t mask)') as (mask: number) => number,
    exit: lib().func('void _exit(int status)') as (status: number) => void,
  };
}
let declared: ReturnType<typeof declare> | undefined;
const fns = () => (declared ??= declare());

/** unshare(CLONE_FS) on the calling thread: its root, cwd and umask become its own. */
export function unshareThreadFilesystem(): void {
  if (fns().unshare(CLONE_FS) < 0) throw new SyscallError('unshare', koffi().errno(), { detail: 'CLONE_FS' });
}

/** setns(2) of the calling thread into the namespace `fd` names, of type `nstype` (CLONE_NEWNS, CLONE_NEWNET). */
export function setns(fd: FdRef, nstype: number, what: string): void {
  if (nstype !== CLONE_NEWNS && nstype !== CLONE_NEWNET) throw new RangeError(`setns: unsupported namespace type ${nstype}`);
  if (fns().setns(fd.fd, nstype) < 0) throw new SyscallError('setns', koffi().errno(), { detail: what });
}

/** The calling thread's own namespace of `kind` ("mnt", "net", "pid", "user"), as an fd. */
export function openOwnNamespace(kind: 'mnt' | 'net' | 'pid' | 'user'): Fd {
  return openat2(C.AT_FDCWD, `/proc/thread-self/ns/${kind}`, { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: 0 });
}

/**
 * umask(2) of the calling thread, which after unshareThreadFilesystem() is its own (the umask
 * lives with root and cwd); Node refuses process.umask(mask) in a worker. The previous mask.
 */
export function setThreadUmask(mask: number): number {
  if (!Number.isInteger(mask) || mask < 0 || mask > 0o777) throw new RangeError(`umask: bad mask ${mask}`);
  return fns().umask(mask);
}

/**
 * _exit(2): every thread ends at once. process.exit() joins worker threads first, and never
 * returns while one is blocked in a system call (a FIFO's open, say) that nothing will complete.
 */
export function exitAllThreads(status: number): never {
  fns().exit(status);
  throw new Error('_exit returned');
}
