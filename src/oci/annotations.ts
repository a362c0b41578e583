// Container annotations that choose the mounts. Parsed into a plan input before anything is
// touched; every refusal names the annotation and its value.
//
// Annotations are set by whoever creates the container (in Kubernetes, the pod's author), so
// every entry they bring or change is untrusted: the plan parser bounds it (no bind, proc only
// at proc and sysfs only at sys, nothing weakened, tmpfs capped: src/mounts/untrusted.ts). Here
// only which entries those are is decided; the operator's plan file and the built-in default,
// where no annotation touched them, stay as the operator wrote them.
// Straight from the modules, not the mounts barrel: podman's precreate stage loads this file on
// every container start, and the barrel would set up the whole engine (attach, detach, records…).
import { kindOf, messageOf } from '../base/index.js';
import { DEFAULTS } from '../mounts/defaults.js';
import { readJsonFile } from '../mounts/json-file.js';
import { parsePlan, PlanError, type Plan, type PlanInput, type PlanTrust } from '../mounts/plan.js';
import { HookError } from './errors.js';

export const ANNOTATION_PREFIX = 'org.mountat.';

type Entry = PlanInput['mounts'][number];

/** The names `org.mountat.mounts` accepts, each a standard entry. */
export const STANDARD_MOUNTS: Record<string, Entry> = {
  proc: { target: 'proc', kind: 'proc' },
  sys: { target: 'sys', kind: 'sysfs' },
  tmp: { target: 'tmp', kind: 'tmpfs' },
};

/** `org.mountat.<mount>.<option>`: which options of which standard entry, and the values they take. */
const TUNABLES: Record<string, { target: string; pattern: RegExp; example: string }> = {
  'proc.subset': { target: 'proc', pattern: /^pid$/, example: 'pid' },
  'proc.hidepid': { target: 'proc', pattern: /^(0|1|2|4|off|noaccess|invisible|ptraceable)$/, example: 'invisible' },
  'tmp.size': { target: 'tmp', pattern: /^[0-9]{1,15}[kKmMgGtT%]?$/, example: '64m' },
  'tmp.nr_inodes': { target: 'tmp', pattern: /^[0-9]{1,15}[kKmMgG]?$/, example: '16k' },
  'tmp.mode': { target: 'tmp', pattern: /^[0-7]{3,4}$/, example: '1777' },
};

export const ANNOTATIONS = ['mounts', 'plan', ...Object.keys(TUNABLES)].map((name) => ANNOTATION_PREFIX + name);

function refuse(key: string, value: string, why: string): never {
  throw new HookError(`annotation ${key}=${JSON.stringify(value)}: ${why}`);
}

function planFromJson(key: string, value: string): unknown {
  let plan: unknown;
  try {
    plan = JSON.parse(value);
  } catch (error) {
    refuse(key, value.length > 80 ? `${value.slice(0, 80)}…` : value, `not JSON (${messageOf(error)})`);
  }
  // Anything else (a bind, proc elsewhere, a weakened attribute) is the parser's to refuse.
  return plan;
}

function planFromList(key: string, value: string): PlanInput {
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  const mounts = names.map((name) => {
    // Own keys only: "toString" must not find Object.prototype's (found by the property tests).
    const entry = Object.hasOwn(STANDARD_MOUNTS, name) ? STANDARD_MOUNTS[name] : undefined;
    if (!entry) refuse(key, value, `unknown mount ${JSON.stringify(name)} (known: ${Object.keys(STANDARD_MOUNTS).join(', ')})`);
    return structuredClone(entry);
  });
  if (new Set(names).size !== names.length) refuse(key, value, 'a mount is named twice');
  return { mounts };
}

export interface BasePlan {
  input: PlanInput;
  /** Where it came from, for messages: "the default plan", "plan file /etc/…". */
  source: string;
}

/** The operator's plan file given with `--plan` (createContainer and precreate read it alike). */
export function readBasePlan(file: string | undefined): BasePlan | undefined {
  if (file === undefined) return undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- not checked here: parsePlan checks it once the annotations have tuned it (org.mountat.plan replaces it unread)
    return { input: readJsonFile(file, '--plan') as PlanInput, source: `plan file ${file}` };
  } catch (error) {
    throw new HookError(messageOf(error), kindOf(error), { cause: error });
  }
}

/** A plan input with, per entry, who wrote it and what to name when it is refused. */
interface Sourced {
  /** Checked by parsePlan: JSON from an annotation is only parsed. */
  input: unknown;
  trust: PlanTrust;
  /** Per entry (else `whole`): "annotation org.mountat.tmp.size", "plan file /etc/p.json". */
  origins: string[];
  /** For an error no entry is at fault for. */
  whole: string;
}

/**
 * The validated plan for a container: `base` (the operator's plan file, or the default)
 * changed by the container's org.mountat.* annotations. Entries from org.mountat.plan or
 * org.mountat.mounts, and any entry a tunable changed, are untrusted; the rest keep the
 * operator's trust. Unknown org.mountat.* keys are refused (a typo must not silently fall back
 * to defaults).
 */
export function containerPlan(annotations: Record<string, string | undefined> | undefined, base?: BasePlan): Plan {
  const sourced = planInputFromAnnotations(annotations, base ?? { input: structuredClone(DEFAULTS.plan), source: 'the default plan' });
  try {
    return parsePlan(sourced.input, sourced.trust);
  } catch (error) {
    const origin = error instanceof PlanError && error.entry !== undefined ? (sourced.origins[error.entry] ?? sourced.whole) : sourced.whole;
    throw new HookError(`${origin}: ${messageOf(error)}`, kindOf(error), { cause: error });
  }
}

function planInputFromAnnotations(annotations: Record<string, string | undefined> | undefined, base: BasePlan): Sourced {
  const ours = Object.entries(annotations ?? {}).filter((entry): entry is [string, string] => entry[0].startsWith(ANNOTATION_PREFIX) && entry[1] !== undefined);
  for (const [key] of ours) {
    if (!ANNOTATIONS.includes(key)) throw new HookError(`unknown annotation ${key} (known: ${ANNOTATIONS.join(', ')})`);
  }
  const get = (name: string) => ours.find(([key]) => key === ANNOTATION_PREFIX + name)?.[1];
  const planJson = get('plan');
  const list = get('mounts');
  if (planJson !== undefined && ours.length > 1) {
    throw new HookError(`annotation ${ANNOTATION_PREFIX}plan cannot be combined with other ${ANNOTATION_PREFIX}* annotations`);
  }
  if (planJson !== undefined) {
    // Every entry the container's, whatever its shape: one trust, one name for all.
    return { input: planFromJson(ANNOTATION_PREFIX + 'plan', planJson), trust: 'untrusted', origins: [], whole: `annotation ${ANNOTATION_PREFIX}plan` };
  }
  const fromList = list !== undefined;
  const plan = structuredClone(fromList ? planFromList(ANNOTATION_PREFIX + 'mounts', list) : base.input);
  const origin = fromList ? `annotation ${ANNOTATION_PREFIX}mounts` : base.source;
  // Which tunables changed each entry: an entry they changed is the container's, not the operator's.
  const tunedBy: string[][] = plan.mounts.map(() => []);
  for (const [name, tunable] of Object.entries(TUNABLES)) {
    const key = ANNOTATION_PREFIX + name;
    const value = get(name);
    if (value === undefined) continue;
    if (!tunable.pattern.test(value)) refuse(key, value, `expected a value like ${JSON.stringify(tunable.example)}`);
    const index = plan.mounts.findIndex((mount) => mount.target === tunable.target);
    const entry = plan.mounts[index];
    if (!entry) refuse(key, value, `the plan has no ${tunable.target} mount to apply it to`);
    entry.options = { ...entry.options, [name.split('.')[1]!]: value };
    tunedBy[index]!.push(key);
  }
  return {
    input: plan,
    trust: tunedBy.map((keys) => (fromList || keys.length > 0 ? 'untrusted' : 'operator')),
    origins: tunedBy.map((keys) => (keys.length === 0 ? origin : `annotation${keys.length > 1 ? 's' : ''} ${keys.join(', ')}`)),
    whole: origin,
  };
}
