// flock(2), which Node's standard library lacks. A lock the kernel holds for an open file and
// drops when the last fd to it is closed, which includes the holder's death by any signal: a
// crashed holder never leaves it taken. No policy: which file, and what to do when it is
// taken, are the caller's.
import { Fd } from './fd.js';
import { koffi, lib } from './libc.js';
import { SyscallError } from './syscall-error.js';

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

let flockFn: ((fd: number, operation: number) => number) | undefined;

/** flock(fd, operation); with LOCK_NB, a lock held elsewhere fails with EWOULDBLOCK (EAGAIN). */
export function flock(fd: Fd, operation: number, where?: string): void {
  if (!Number.isInteger(operation) || (operation & ~(LOCK_SH | LOCK_EX | LOCK_NB | LOCK_UN)) !== 0) throw new RangeError(`flock: bad operation ${operation}`);
  flockFn ??= lib().func('int flock(int fd, int operation)') as (fd: number, operation: number) => number;
  if (flockFn(fd.fd, operation) < 0) throw new SyscallError('flock', koffi().errno(), { path: where });
}
