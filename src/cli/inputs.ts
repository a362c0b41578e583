// What the verbs share: opening the root the operator named, reading a plan file.
import { kindOf, messageOf, MountatError } from '../base/index.js';
import type { Fd } from '../linux/index.js';
import { defaultPlan, openRoot as openRootAt, parsePlan, readJsonFile, type Plan } from '../mounts/index.js';
import { UsageError } from './usage-error.js';

/** The root is a host path the operator chose, so it is opened normally; beneath it, nothing is. */
export function openRoot(dir: string | undefined): Fd {
  if (!dir) throw new UsageError('--root DIR is required');
  return openRootAt(dir);
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
