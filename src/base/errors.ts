// One error model for the whole project (crun's libcrun_error_t, runc's %w chains): every error
// mountat throws on purpose is a MountatError with a kind; context is added by wrapping with
// `{ cause }` (several causes: AggregateError), never by flattening messages into strings. The
// three entry points (the CLI, the OCI hook, the runner's gRPC service) turn an error into what
// they report through one table, KINDS, and one formatter, describeError(). A cause is either quoted
// by the message that wraps it (MountatError.wrap) or kept only as an object: never both.
//
// This layer is below src/linux: it imports nothing of the project.

/** What went wrong, as the edges need to know it: who is at fault and what the caller can do. */
export type ErrorKind =
  /** The command or hook was called wrongly (flags, arguments, stage). */
  | 'usage'
  /** An input is malformed or refers to nothing: a plan, a config, a request, an OCI state. */
  | 'invalid-input'
  /** The input is fine, but the world is not as it must be (already mounted, setup of an action failed). */
  | 'precondition'
  /** This process lacks a privilege it needs (a capability, a file mode). */
  | 'not-permitted'
  /** The kernel refused a call for another reason. */
  | 'kernel'
  /** What was asked for does not exist (a path the caller named). */
  | 'not-found'
  /** Not now: the service cannot take work yet (not ready). */
  | 'unavailable'
  /** The caller gave up (an RPC cancelled, a signal). */
  | 'cancelled'
  /** A broken invariant or anything not made on purpose. */
  | 'internal';

/** gRPC status codes (grpc-js `status`), by number: this layer must not load grpc-js for the hook's sake. */
export const GrpcStatus = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface KindMapping {
  /** The exit code of `mountat` and `mountat-hook` (2: called wrongly, as most Unix tools). */
  exitCode: number;
  /** The status the runner's RPC fails with. */
  grpcStatus: number;
  logLevel: 'info' | 'warn' | 'error';
}

/** The one table the edges read. */
export const KINDS: Readonly<Record<ErrorKind, KindMapping>> = {
  usage: { exitCode: 2, grpcStatus: GrpcStatus.INVALID_ARGUMENT, logLevel: 'warn' },
  'invalid-input': { exitCode: 1, grpcStatus: GrpcStatus.INVALID_ARGUMENT, logLevel: 'warn' },
  precondition: { exitCode: 1, grpcStatus: GrpcStatus.FAILED_PRECONDITION, logLevel: 'warn' },
  // The runner's own lack (a capability its container was not given): not the client's fault.
  'not-permitted': { exitCode: 1, grpcStatus: GrpcStatus.INTERNAL, logLevel: 'error' },
  kernel: { exitCode: 1, grpcStatus: GrpcStatus.INTERNAL, logLevel: 'error' },
  'not-found': { exitCode: 1, grpcStatus: GrpcStatus.NOT_FOUND, logLevel: 'warn' },
  unavailable: { exitCode: 1, grpcStatus: GrpcStatus.UNAVAILABLE, logLevel: 'warn' },
  cancelled: { exitCode: 1, grpcStatus: GrpcStatus.CANCELLED, logLevel: 'info' },
  internal: { exitCode: 1, grpcStatus: GrpcStatus.INTERNAL, logLevel: 'error' },
};

/**
 * The base of every error mountat makes on purpose. Its message is the whole line, unless it was
 * made by wrap(): then the message is the context, and describeError() adds the cause after it.
 */
export class MountatError extends Error {
  readonly kind: ErrorKind;
  /** The message is context for the cause (made by wrap()), not the whole story. */
  readonly wrapsCause: boolean;

  constructor(kind: ErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MountatError';
    this.kind = kind;
    this.wrapsCause = false;
  }

  /** `context` added to `cause` (Go's `fmt.Errorf("context: %w", err)`): described as "context: cause". */
  static wrap(kind: ErrorKind, context: string, cause: unknown): MountatError {
    const error = new MountatError(kind, context, { cause });
    (error as { wrapsCause: boolean }).wrapsCause = true;
    return error;
  }
}

/** The kind of anything thrown: a MountatError's own, else internal (nobody made it on purpose). */
export function kindOf(error: unknown): ErrorKind {
  return error instanceof MountatError ? error.kind : 'internal';
}

/**
 * The errno name Node puts on the errors of its own calls (fs, child_process, process.kill), such
 * as "ENOENT", read through a guard rather than `(error as NodeJS.ErrnoException).code`; undefined
 * for anything else.
 */
export function errnoCodeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** The message of anything thrown, without the cast `(error as Error).message`. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One line for a person: the message; a wrapped error's cause after it (": "); an AggregateError's
 * errors joined by "; ". Any other error's message is taken as the whole line: its cause is kept
 * for programs and logs, not repeated.
 */
export function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    const inner = error.errors.map(describeError).join('; ');
    return error.message === '' ? inner : `${error.message}: ${inner}`;
  }
  if (error instanceof MountatError && error.wrapsCause && error.cause !== undefined) return `${error.message}: ${describeError(error.cause)}`;
  return messageOf(error);
}

/** What an edge reports for an error: the table's row for its kind, and its one line. */
export function reportOf(error: unknown): KindMapping & { kind: ErrorKind; line: string } {
  const kind = kindOf(error);
  return { kind, ...KINDS[kind], line: describeError(error) };
}
