// What the verbs share: opening the root the operator named, reading a plan file.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import { constants as C, type Fd, openat2 } from '../linux/index.js';
import { MountError, defaultPlan, parsePlan, readJsonFile, type Plan } from '../mounts/index.js';
import { UsageError } from './usage-error.js';

/** The root is a host path the operator chose, so it is opened normally; beneath it, nothing is. */
export function openRoot(dir: string | undefined): Fd {
  if (!dir) throw new UsageError('--root DIR is required');
  try {
    return openat2(C.AT_FDCWD, dir, { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: 0 }, dir);
  } catch (error) {
    throw new MountError(dir, 'open root', error);
  }
}

export function loadPlan(file: string | undefined): Plan {
  if (file === undefined) return defaultPlan();
  const json = readJsonFile(file, 'plan file');
  try {
    return parsePlan(json);
  } catch (error) {
    throw new MountatError(kindOf(error), `plan file ${file}: ${messageOf(error)}`, { cause: error });
  }
}
