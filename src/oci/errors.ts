import { KINDS, MountatError, type ErrorKind } from '../base/index.js';

/**
 * A failure of the OCI hook, one line for stderr. Its kind gives the exit code (KINDS): usage, how
 * the hook was called, exits 2; anything else 1. Most refuse what the runtime or the container
 * handed in (the state, config.json, annotations, a spec): that is the default.
 */
export class HookError extends MountatError {
  constructor(message: string, kind: ErrorKind = 'invalid-input', options?: ErrorOptions) {
    super(kind, message, options);
    this.name = 'HookError';
  }

  /** The exit code its kind maps to: 2 for usage, 1 otherwise. */
  get exitCode(): number {
    return KINDS[this.kind].exitCode;
  }
}
