// pidfd_open(2) and pidfd_send_signal(2): a process named by an fd rather than by its pid, so a
// signal can never reach another process that was given the same pid after this one was reaped
// (by a parent other than us). No policy here. Syscall numbers are the generic table's, the same
// on x86_64 and aarch64.
import { Fd } from './fd.js';
import { koffi, lib } from './libc.js';
import { SyscallError } from './syscall-error.js';

const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;

let call4: ((nr: number, a: number, b: number, c: null, d: number) => number) | undefined;
const syscall4 = () => (call4 ??= lib().func('long syscall(long nr, long a, long b, void *c, long d)') as (nr: number, a: number, b: number, c: null, d: number) => number);

/** A pidfd for `pid`; undefined when there is no such process (ESRCH) any more. */
export function pidfdOpen(pid: number): Fd | undefined {
  if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`pidfd_open: bad pid ${pid}`);
  const fd = syscall4()(SYS_PIDFD_OPEN, pid, 0, null, 0);
  if (fd >= 0) return new Fd(fd);
  const errno = koffi().errno();
  if (errno === 3 /* ESRCH */) return undefined;
  throw new SyscallError('pidfd_open', errno, { detail: `pid ${pid}` });
}

/** Signal the process `pidfd` names; false when it has ended (ESRCH), whoever reaped it. */
export function pidfdSendSignal(pidfd: Fd, signal: number): boolean {
  if (!Number.isInteger(signal) || signal < 0 || signal > 64) throw new RangeError(`pidfd_send_signal: bad signal ${signal}`);
  if (syscall4()(SYS_PIDFD_SEND_SIGNAL, pidfd.fd, signal, null, 0) >= 0) return true;
  const errno = koffi().errno();
  if (errno === 3 /* ESRCH */) return false;
  throw new SyscallError('pidfd_send_signal', errno);
}
