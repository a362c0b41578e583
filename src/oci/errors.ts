/** A hook failure: one line for stderr, and the exit code (2: how the hook was called; 1: anything else). */
export class HookError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HookError';
    this.exitCode = exitCode;
  }
}
