import { MountatError } from '../base/index.js';

/** A mistake in how the command was called (kind usage): reported with exit code 2, like most Unix tools. */
export class UsageError extends MountatError {
  constructor(message: string, options?: ErrorOptions) {
    super('usage', message, options);
    this.name = 'UsageError';
  }
}
