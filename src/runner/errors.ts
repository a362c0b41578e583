import { MountatError } from '../base/index.js';

/** The request is at fault (bb_runner's INVALID_ARGUMENT): one line naming the field. */
export const invalidArgument = (message: string, cause?: unknown) => new MountatError('invalid-input', message, { cause });
