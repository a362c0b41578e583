import { status } from '@grpc/grpc-js';

/** A failure with the gRPC status bb_worker should see; converted to a status in one place (service.ts). */
export class RunnerError extends Error {
  readonly code: status;

  constructor(code: status, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RunnerError';
    this.code = code;
  }
}

export const invalidArgument = (message: string, cause?: unknown) => new RunnerError(status.INVALID_ARGUMENT, message, { cause });
export const internal = (message: string, cause?: unknown) => new RunnerError(status.INTERNAL, message, { cause });
