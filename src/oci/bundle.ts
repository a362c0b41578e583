// Finding the container's root filesystem: crun's state.root when given, otherwise config.json's
// root.path, which when relative must stay beneath the bundle (RESOLVE_BENEATH refuses `..`
// and absolute symlinks that would leave it).
import { readFileSync } from 'node:fs';
import { kindOf, messageOf } from '../base/index.js';
import { constants as C, type Fd, isErrno, openat2 } from '../linux/index.js';
import { MountError, validateOrThrow, type Validator } from '../mounts/index.js';
import { HookError } from './errors.js';
import type { OciConfig } from './generated/oci-config.js';
import { validateOciConfig } from './generated/validate-oci-config.js';
import type { OciState } from './state.js';

export type { OciConfig } from './generated/oci-config.js';

const DIR = C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC;

/**
 * The bundle or the rootfs is not there (ENOENT): at poststop this proves that nothing of ours can
 * be left in it, unlike any other failure to open it. Invalid input: the state names nothing.
 */
export class RootfsGoneError extends HookError {
  constructor(message: string, cause: unknown) {
    super(message, 'invalid-input', { cause });
    this.name = 'RootfsGoneError';
  }
}

/** A HookError for a failure to open the bundle or the rootfs (`syscall`'s): a RootfsGoneError when it is missing. */
function openFailure(message: string, cause: unknown, syscall: unknown = cause): HookError {
  return isErrno(syscall, 'ENOENT') ? new RootfsGoneError(message, cause) : new HookError(message, kindOf(cause), { cause });
}

function openBundle(state: OciState): Fd {
  try {
    return openat2(C.AT_FDCWD, state.bundle, { flags: DIR, resolve: 0 }, state.bundle);
  } catch (error) {
    throw openFailure(`state.bundle ${JSON.stringify(state.bundle)}: ${messageOf(error)}`, error);
  }
}

export function readConfig(state: OciState): OciConfig {
  using bundle = openBundle(state);
  let text: string;
  try {
    using file = openat2(bundle, 'config.json', { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: C.RESOLVE_BENEATH }, 'config.json');
    text = readFileSync(file.fd, 'utf8');
  } catch (error) {
    throw new HookError(`cannot read config.json in bundle ${state.bundle}: ${messageOf(error)}`, kindOf(error), { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new HookError(`config.json in bundle ${state.bundle} is not JSON: ${messageOf(error)}`, 'invalid-input', { cause: error });
  }
  return validateOrThrow<OciConfig>(validateOciConfig as Validator, json, 'config', (line) => new HookError(`config.json in bundle ${state.bundle}: ${line}`));
}

export interface Rootfs {
  fd: Fd;
  /** As the runtime named it, for messages. */
  path: string;
}

/**
 * Open the rootfs as an O_PATH directory fd: crun's state.root when given (config.json is then
 * not read at all), otherwise config.json's root.path. Either may be absolute, or relative to
 * the bundle (crun 1.8 sends "rootfs").
 */
export function openRootfs(state: OciState): Rootfs {
  const [field, rootPath] = state.root !== undefined ? ['state.root', state.root] : ['config.json root.path', readConfig(state).root.path];
  if (rootPath.startsWith('/')) {
    try {
      return { fd: openat2(C.AT_FDCWD, rootPath, { flags: DIR, resolve: 0 }, rootPath), path: rootPath };
    } catch (error) {
      // The engine's wording (what, where, why, a hint), as the error this one chains to.
      const opening = new MountError(rootPath, `open ${field}`, error);
      throw openFailure(opening.message, opening, error);
    }
  }
  using bundle = openBundle(state);
  try {
    return {
      fd: openat2(bundle, rootPath, { flags: DIR, resolve: C.RESOLVE_BENEATH | C.RESOLVE_NO_MAGICLINKS }, rootPath),
      path: `${state.bundle}/${rootPath}`,
    };
  } catch (error) {
    if (isErrno(error, 'EXDEV')) throw new HookError(`${field} ${JSON.stringify(rootPath)} escapes the bundle ${state.bundle}`);
    throw openFailure(`${field} ${JSON.stringify(rootPath)}: ${messageOf(error)}`, error);
  }
}
