import { constants as osConstants } from 'node:os';
import { MountatError } from '../base/index.js';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  // Keep the first name for aliases (EAGAIN before EWOULDBLOCK, EDEADLK before EDEADLOCK).
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** A path for a one-line message: control characters (a newline in a name) shown escaped. */
export function printable(path: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point: they are what gets escaped
  return path.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export interface SyscallErrorContext {
  /** The path the call worked on, relative to the action root where there is one. */
  path?: string | undefined;
  /** The kernel's own explanation (fs-context log) or readable flags. */
  detail?: string | undefined;
}

/** errnos that mean this process lacks a privilege, not that the kernel refused the request itself. */
const NOT_PERMITTED = new Set(['EPERM', 'EACCES']);

/** A failed system call: which call, the errno and its name, where, and the kernel's word. */
export class SyscallError extends MountatError {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  readonly path: string | undefined;
  readonly detail: string | undefined;

  constructor(syscall: string, errno: number, context: SyscallErrorContext = {}) {
    const code = errnoName(errno);
    const where = context.path === undefined ? '' : ` \`${printable(context.path)}\``;
    const detail = context.detail ? ` (${context.detail})` : '';
    super(NOT_PERMITTED.has(code) ? 'not-permitted' : 'kernel', `${syscall}${where}: ${code}${detail}`);
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.path = context.path;
    this.detail = context.detail;
  }
}

export function isErrno(error: unknown, ...codes: string[]): error is SyscallError {
  return error instanceof SyscallError && codes.includes(error.code);
}
