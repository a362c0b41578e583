import { printable, SyscallError } from '../linux/index.js';

/** Why a syscall failure happened, in words an operator can act on. */
const HINTS: Record<string, Record<string, string>> = {
  openat2: {
    ELOOP: 'a component is a symlink; mount targets must be real directories inside the root',
    EXDEV: 'the path crosses or is already a mount point',
    ENOTDIR: 'a component is not a directory',
    ENOENT: 'does not exist',
    EAGAIN: 'the root changed while it was being resolved; try again',
  },
  mkdirat: {
    EROFS: 'the root is read-only, so the mountpoint cannot be created',
    EEXIST: 'appeared while being created',
  },
  fsopen: { EPERM: 'mounting needs CAP_SYS_ADMIN (run as root or grant the capability)' },
  open_tree: { EPERM: 'mounting needs CAP_SYS_ADMIN', ENOENT: 'bind source does not exist' },
  move_mount: {
    EINVAL: 'the target is not in this process\'s mount namespace, or its mount cannot take submounts',
    EPERM: 'mounting needs CAP_SYS_ADMIN',
  },
  umount2: { EINVAL: 'not a mount point', EPERM: 'unmounting needs CAP_SYS_ADMIN' },
};

export function hintFor(error: unknown): string | undefined {
  if (!(error instanceof SyscallError) || error.detail) return undefined;
  return HINTS[error.syscall]?.[error.code];
}

/** A failure of the engine at one target; the message is one line: what, where, why. */
export class MountError extends Error {
  readonly target: string;

  /** `qualifier` follows the target: ``cover `proc/sys` read-only: move_mount: EINVAL``. */
  constructor(target: string, action: string, cause: unknown, qualifier?: string) {
    const hint = hintFor(cause);
    // The target is already in this message; a SyscallError's own copy of it would repeat it.
    const because =
      cause instanceof SyscallError
        ? `${cause.syscall}: ${cause.code}${cause.detail ? ` (${cause.detail})` : ''}`
        : cause instanceof Error
          ? cause.message
          : String(cause);
    super(`${action} \`${printable(target)}\`${qualifier ? ` ${qualifier}` : ''}: ${because}${hint ? ` — ${hint}` : ''}`, { cause });
    this.name = 'MountError';
    this.target = target;
  }
}

/** Attach failed; everything it had done was rolled back (or the rollback's own problems are listed). */
export class AttachError extends Error {
  readonly rollbackProblems: string[];
  constructor(cause: Error, rollbackProblems: string[]) {
    const tail = rollbackProblems.length > 0 ? `; rollback also failed: ${rollbackProblems.join('; ')}` : '';
    super(`${cause.message}${tail}`, { cause });
    this.name = 'AttachError';
    this.rollbackProblems = rollbackProblems;
  }
}
