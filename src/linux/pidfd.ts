// pidfd_open(2) and pidfd_send_signal(2): a process named by an fd rather than by its pid, so a
// signal can never reach another process that was given the same pid after this one was reaped
// (by a parent other than us); and a process's PID namespace as an fd. No policy here.
import { constants as osConstants } from 'node:os';
import { openat2 } from './calls.js';
import * as C from './constants.js';
import { SYS } from './constants.js';
import { Fd } from './fd.js';
import { koffi, sys } from './libc.js';
import { SyscallError } from './syscall-error.js';

const ESRCH = osConstants.errno.ESRCH;

/** A pidfd for `pid`; undefined when there is no such process (ESRCH) any more. */
export function pidfdOpen(pid: number): Fd | undefined {
  if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`pidfd_open: bad pid ${pid}`);
  const fd = sys().long3(SYS.pidfd_open, pid, 0, 0);
  if (fd >= 0) return new Fd(fd);
  const errno = koffi().errno();
  if (errno === ESRCH) return undefined;
  throw new SyscallError('pidfd_open', errno, { detail: `pid ${pid}` });
}

/** Signal the process `pidfd` names; false when it has ended (ESRCH), whoever reaped it. */
export function pidfdSendSignal(pidfd: Fd, signal: number): boolean {
  if (!Number.isInteger(signal) || signal < 0 || signal > 64) throw new RangeError(`pidfd_send_signal: bad signal ${signal}`);
  // info NULL (as from kill(2)), flags 0.
  if (sys().long4(SYS.pidfd_send_signal, pidfd.fd, signal, 0, 0) >= 0) return true;
  const errno = koffi().errno();
  if (errno === ESRCH) return false;
  throw new SyscallError('pidfd_send_signal', errno);
}

/**
 * The PID namespace of `pid`, as an fd (proc's pidns option takes it): opened through
 * /proc/PID/ns/pid, since a pidfd names a process, not its namespace, on this kernel's ioctls.
 */
export function openPidNamespace(pid: number): Fd {
  if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`open PID namespace: bad pid ${pid}`);
  return openat2(C.AT_FDCWD, `/proc/${pid}/ns/pid`, { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: 0 });
}
