// One error model for the whole project (crun's libcrun_error_t, runc's %w chains): every error
// mountat throws on purpose is a MountatError with a kind; context is added by wrapping with
// `{ cause }` (several causes: AggregateError), never by flattening messages into strings. The
// three entry points (the CLI, the OCI hook, the runner's gRPC service) turn an error into what
// they report through one table, KINDS, and one formatter, describeError().
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
  /** The caller gave up (an RPC cancelled, a signal). */
  | 'cancelled'
  /** A broken invariant or anything not made on purpose. */
  | 'internal';

/** gRPC status codes (grpc-js `status`), by number: this layer must not load grpc-js for the hook's sake. */
export const GrpcStatus = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
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
  cancelled: { exitCode: 1, grpcStatus: GrpcStatus.CANCELLED, logLevel: 'info' },
  internal: { exitCode: 1, grpcStatus: GrpcStatus.INTERNAL, logLevel: 'error' },
};

/** The base of every error mountat makes on purpose. */
export class MountatError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MountatError';
    this.kind = kind;
  }
}

/** The kind of anything thrown: a MountatError's own, else internal (nobody made it on purpose). */
export function kindOf(error: unknown): ErrorKind {
  return error instanceof MountatError ? error.kind : 'internal';
}

/** The message of anything thrown, without the cast `(error as Error).message`. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One line for a person: the error's message, then each cause that adds something, separated by
 * ": ", and an AggregateError's errors joined by "; ". A cause whose message the wrapper already
 * quotes is not repeated.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 16; depth++) {
    const text = current instanceof AggregateError && current.errors.length > 0 ? aggregateText(current) : messageOf(current);
    if (text !== '' && !parts.some((part) => part.includes(text))) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

function aggregateText(error: AggregateError): string {
  const inner = error.errors.map(describeError).join('; ');
  return error.message === '' ? inner : `${error.message}: ${inner}`;
}

/** What an edge reports for an error: the table's row for its kind, and its one line. */
export function reportOf(error: unknown): KindMapping & { kind: ErrorKind; line: string } {
  const kind = kindOf(error);
  return { kind, ...KINDS[kind], line: describeError(error) };
}
