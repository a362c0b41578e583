/** A mistake in how the command was called: reported with exit code 2, like most Unix tools. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
