import { MountatError } from '../base/index.js';

/** A mistake in how the command was called: reported with exit code 2, like most Unix tools. */
export class UsageError extends MountatError {
  constructor(message: string) {
    super('usage', message);
    this.name = 'UsageError';
  }
}
