// The container state on the hook's stdin, parsed and validated before anything is touched.
import { messageOf } from '../base/index.js';
import { validateOrThrow, type Validator } from '../mounts/index.js';
import { HookError } from './errors.js';
import type { OciState } from './generated/oci-state.js';
import { validateOciState } from './generated/validate-oci-state.js';

export type { OciState } from './generated/oci-state.js';

export function parseState(text: string): OciState {
  if (text.trim() === '') throw new HookError('no container state on stdin (a runtime writes it there)');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new HookError(`the container state on stdin is not JSON: ${messageOf(error)}`, 'invalid-input', { cause: error });
  }
  return validateOrThrow<OciState>(validateOciState as Validator, json, 'state', (line) => new HookError(line));
}
