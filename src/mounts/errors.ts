import { kindOf, messageOf, MountatError } from '../base/index.js';
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
    EINVAL: "the target is not in this process's mount namespace, or its mount cannot take submounts",
    EPERM: 'mounting needs CAP_SYS_ADMIN',
  },
  umount2: { EINVAL: 'not a mount point', EPERM: 'unmounting needs CAP_SYS_ADMIN' },
};

export function hintFor(error: unknown): string | undefined {
  if (!(error instanceof SyscallError) || error.detail) return undefined;
  return HINTS[error.syscall]?.[error.code];
}

/**
 * A failure of the engine at one target; the message is one line: what, where, why. Its kind is
 * its cause's (an AggregateError's first: what failed, the rest failing while undoing it).
 */
export class MountError extends MountatError {
  readonly target: string;

  /** `qualifier` follows the target: ``cover `proc/sys` read-only: move_mount: EINVAL``. */
  constructor(target: string, action: string, cause: unknown, qualifier?: string) {
    const hint = hintFor(cause);
    // The target is already in this message; a SyscallError's own copy of it would repeat it.
    const because = cause instanceof SyscallError ? `${cause.syscall}: ${cause.code}${cause.detail ? ` (${cause.detail})` : ''}` : messageOf(cause);
    const primary: unknown = cause instanceof AggregateError && cause.errors.length > 0 ? cause.errors[0] : cause;
    super(kindOf(primary), `${action} \`${printable(target)}\`${qualifier ? ` ${qualifier}` : ''}: ${because}${hint ? ` — ${hint}` : ''}`, { cause });
    this.name = 'MountError';
    this.target = target;
  }
}

/**
 * Attach failed; everything it had done was rolled back, or what the rollback could not undo is
 * kept in `rollbackErrors` (each with its own causes) and named after the failure in the message.
 * The kind is the failure's.
 */
export class AttachError extends MountatError {
  /** What the rollback could not undo; empty when it was whole. */
  readonly rollbackErrors: readonly Error[];
  /** The rollback's failures, one line each. */
  readonly rollbackProblems: string[];
  /** A rollback failure that is not an Error (a line only) is kept as an internal one with that message. */
  constructor(cause: unknown, rollbackFailures: readonly unknown[] = []) {
    const errors = rollbackFailures.map((failure) => (failure instanceof Error ? failure : new MountatError('internal', messageOf(failure))));
    const problems = errors.map((error) => error.message);
    const tail = problems.length > 0 ? `; rollback also failed: ${problems.join('; ')}` : '';
    super(kindOf(cause), `${messageOf(cause)}${tail}`, { cause });
    this.name = 'AttachError';
    this.rollbackErrors = errors;
    this.rollbackProblems = problems;
  }
}
