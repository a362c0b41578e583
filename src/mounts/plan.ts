// Parsing and validating a mount plan: pure code, no system calls. Whatever leaves this
// file is safe for the engine to apply; whatever is wrong is reported before anything is
// mounted, with the entry and field named. Entries the caller does not trust (a container's
// annotations) are bounded here too, by untrusted.ts: one place, whatever the plan came from.
import { messageOf, MountatError } from '../base/index.js';
import { BorrowedFd, Fd, type FdRef } from '../linux/fd.js';
import { ALLOWED_OPTIONS, DEFAULTS, type Attributes } from './defaults.js';
import type { MountEntry, MountPlan } from './generated/mount-plan.js';
import { validateMountPlan as validateMountPlanUntyped } from './generated/validate-mount-plan.js';
import { checkUntrustedEntry } from './untrusted.js';
import { describeSchemaError, schemaValidator } from './validation.js';

export type MountKind = MountEntry['kind'];

const validateMountPlan = schemaValidator<MountPlan>(validateMountPlanUntyped);

/** A filesystem option as fsconfig takes it: a string value, or a flag. */
export type FsOption = { key: string; value: string } | { key: string; flag: true };

/** Where a bind mount comes from: a host path, or an fd the caller already opened. */
export type BindSource = { path: string } | { fd: FdRef };

interface PlannedBase {
  /** Relative to the root, normalised: components joined by '/', no '.', '..' or empty ones. */
  target: string;
  attributes: Attributes;
}

export type PlannedMount =
  | (PlannedBase & { kind: 'proc'; options: FsOption[]; hardened: boolean })
  | (PlannedBase & { kind: 'sysfs'; options: FsOption[]; hardened: boolean })
  | (PlannedBase & { kind: 'tmpfs'; options: FsOption[] })
  | (PlannedBase & { kind: 'bind'; source: BindSource; recursive: boolean });

export interface Plan {
  mounts: PlannedMount[];
}

/** A plan, or a record's target, that the engine refuses: always invalid input. */
export class PlanError extends MountatError {
  /** The index of the entry at fault, when one is: a caller that assembled the plan can say where it came from. */
  readonly entry: number | undefined;
  /** What is wrong, without where: for a caller that names the place itself. */
  readonly reason: string;

  constructor(message: string, entry?: number, reason: string = message, options?: ErrorOptions) {
    super('invalid-input', message, options);
    this.name = 'PlanError';
    this.entry = entry;
    this.reason = reason;
  }
}

/** The refusal of the entry at `where`: "<where>: <reason>", with the reason kept apart. */
function refuse(where: string, reason: string, options?: ErrorOptions): PlanError {
  return new PlanError(`${where}: ${reason}`, undefined, reason, options);
}

/**
 * Who wrote a plan entry. `operator`: the operator's plan file, the runner's config, the
 * built-in default, code: applied as written. `untrusted`: whoever creates a container (its
 * annotations): bounded by untrusted.ts.
 */
export type Trust = 'operator' | 'untrusted';

/** One trust for the whole plan, or one per entry by index (an entry without one is untrusted). */
export type PlanTrust = Trust | readonly Trust[];

/** Programmatic input: the JSON plan, except a bind source may be an fd. */
export type PlanInput = Omit<MountPlan, 'mounts'> & {
  mounts: Array<Omit<MountEntry, 'source'> & { source?: string | { fd: FdRef } }>;
};

const MAX_PATH = 4096;
const MAX_NAME = 255;

/** Split a target into its components, refusing anything that is not a plain relative path. */
export function targetComponents(target: string): string[] {
  if (target.length === 0) throw new PlanError('target is empty');
  if (target.includes('\0')) throw new PlanError(`target ${JSON.stringify(target)} contains a NUL byte`);
  // A lone surrogate would reach the kernel as U+FFFD: the directory made would not be the one named.
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(target))
    throw new PlanError(`target ${JSON.stringify(target)} is not valid Unicode`);
  if (Buffer.byteLength(target) > MAX_PATH) throw new PlanError(`target is longer than ${MAX_PATH} bytes`);
  if (target.startsWith('/'))
    throw new PlanError(
      `target ${JSON.stringify(target)} is absolute; give it relative to the root, e.g. ${JSON.stringify(target.replace(/^\/+/, '') || 'proc')}`,
    );
  const parts = target.split('/');
  for (const part of parts) {
    if (part === '') throw new PlanError(`target ${JSON.stringify(target)} has an empty component`);
    if (part === '.' || part === '..')
      throw new PlanError(`target ${JSON.stringify(target)} contains ${JSON.stringify(part)}; targets must stay beneath the root`);
    if (Buffer.byteLength(part) > MAX_NAME) throw new PlanError(`target ${JSON.stringify(target)} has a component longer than ${MAX_NAME} bytes`);
  }
  return parts;
}

function isUnder(inner: string[], outer: string[]): boolean {
  return outer.length <= inner.length && outer.every((part, i) => inner[i] === part);
}

function fsOptions(kind: 'proc' | 'sysfs' | 'tmpfs', given: Record<string, unknown>, where: string): FsOption[] {
  const merged: Record<string, unknown> = { ...DEFAULTS.options[kind], ...given };
  const options: FsOption[] = [];
  for (const [key, value] of Object.entries(merged)) {
    if (!ALLOWED_OPTIONS[kind].has(key)) {
      const allowed = [...ALLOWED_OPTIONS[kind]];
      throw refuse(where, `unknown ${kind} option ${JSON.stringify(key)} (${allowed.length ? `known: ${allowed.join(', ')}` : `${kind} takes no options`})`);
    }
    if (value === false || value === undefined) continue;
    if (value === true) options.push({ key, flag: true });
    else if (key === 'mode' && (typeof value !== 'string' || !/^[0-7]{3,4}$/.test(value))) {
      throw refuse(where, `option mode must be an octal string such as "1777", not ${JSON.stringify(value)}`);
    } else if (typeof value === 'string' || typeof value === 'number') {
      const text = String(value);
      if (text.includes(',') || text.includes('\0')) throw refuse(where, `option ${key} has a comma or NUL in its value`);
      options.push({ key, value: text });
    } else throw refuse(where, `option ${key} must be a string, a number or a boolean`);
  }
  return options;
}

function bindSource(source: unknown, where: string): BindSource {
  if (source === undefined) throw refuse(where, `a bind needs a source`);
  if (typeof source === 'object' && source !== null && 'fd' in source) {
    const { fd } = source;
    // An fd the caller keeps open: an owned Fd it lends, or one it borrowed; never a bare number.
    if (!(fd instanceof Fd) && !(fd instanceof BorrowedFd))
      throw refuse(where, `source fd must be an Fd or a BorrowedFd, not ${typeof fd === 'number' ? 'a bare number' : JSON.stringify(fd)}`);
    return { fd };
  }
  if (typeof source !== 'string' || !source.startsWith('/')) throw refuse(where, `bind source must be an absolute host path`);
  if (source.includes('\0')) throw refuse(where, `bind source contains a NUL byte`);
  return { path: source };
}

/**
 * Validate a plan (JSON or programmatic) and fill in the defaults; entries `trust` says are
 * untrusted must also stay within the bounds of untrusted.ts. Throws PlanError.
 */
export function parsePlan(input: unknown, trust: PlanTrust = 'operator', label = 'plan'): Plan {
  // A bind source given as an fd is not JSON; check the schema on a copy without it.
  const { checked, fdSources } = setFdSourcesAside(input);
  if (!validateMountPlan(checked)) {
    const first = validateMountPlan.errors?.[0];
    const entry = first ? /^\/mounts\/(\d+)(\/|$)/.exec(first.instancePath)?.[1] : undefined;
    throw new PlanError(first ? describeSchemaError(label, first, checked) : `${label} is invalid`, entry === undefined ? undefined : Number(entry));
  }
  const seen: Array<{ parts: string[]; target: string }> = [];
  const mounts = checked.mounts.map((checkedEntry, index): PlannedMount => {
    // The fd source back in its place: bindSource() checks it is an Fd or a BorrowedFd.
    const entry: Entry = fdSources.has(index) ? { ...checkedEntry, source: fdSources.get(index) } : checkedEntry;
    try {
      return parseEntry(entry, `${label}.mounts[${index}]`, seen, typeof trust === 'string' ? trust : (trust[index] ?? 'untrusted'));
    } catch (error) {
      // Each refusal below is one line; the index travels with it.
      throw error instanceof PlanError ? new PlanError(error.message, index, error.reason, { cause: error.cause }) : error;
    }
  });
  return { mounts };
}

/** A plan entry whose schema is checked, its source aside: a host path, or what was given as an fd. */
type Entry = Omit<MountEntry, 'source'> & { source?: unknown };

/** `at`: the entry's place, "plan.mounts[2]". */
function parseEntry(entry: Entry, at: string, seen: Array<{ parts: string[]; target: string }>, trust: Trust): PlannedMount {
  const where = `${at} (${JSON.stringify(entry.target)})`;
  let parts: string[];
  try {
    parts = targetComponents(entry.target);
  } catch (error) {
    throw refuse(at, messageOf(error), { cause: error });
  }
  for (const other of seen) {
    if (isUnder(parts, other.parts) || isUnder(other.parts, parts)) {
      const relation = other.parts.length === parts.length ? 'repeats' : 'is nested with';
      throw refuse(where, `target ${relation} the earlier target ${JSON.stringify(other.target)}; each mount needs its own place`);
    }
  }
  const target = parts.join('/');
  seen.push({ parts, target });
  const attributes = { ...DEFAULTS.attributes[entry.kind], ...entry.attributes };
  if (entry.kind !== 'bind' && entry.source !== undefined) throw refuse(where, `source is only for kind bind`);
  if (entry.kind !== 'proc' && entry.kind !== 'sysfs' && entry.hardened !== undefined) throw refuse(where, `hardened is only for kinds proc and sysfs`);
  if (trust === 'untrusted') {
    checkUntrustedEntry(entry, target, (field, why) => {
      throw refuse(where, `${field}: ${why}`);
    });
  }
  switch (entry.kind) {
    case 'proc':
      return { kind: 'proc', target, attributes, options: fsOptions('proc', entry.options ?? {}, where), hardened: entry.hardened ?? DEFAULTS.procHardened };
    case 'sysfs':
      return { kind: 'sysfs', target, attributes, options: fsOptions('sysfs', entry.options ?? {}, where), hardened: entry.hardened ?? DEFAULTS.sysfsHardened };
    case 'tmpfs':
      return { kind: 'tmpfs', target, attributes, options: fsOptions('tmpfs', entry.options ?? {}, where) };
    case 'bind': {
      const { recursive, ...rest } = entry.options ?? {};
      const unknown = Object.keys(rest);
      if (unknown.length > 0) throw refuse(where, `unknown bind option ${JSON.stringify(unknown[0])} (known: recursive)`);
      if (recursive !== undefined && typeof recursive !== 'boolean') throw refuse(where, `option recursive must be true or false`);
      return { kind: 'bind', target, attributes, source: bindSource(entry.source, where), recursive: recursive ?? DEFAULTS.bindRecursive };
    }
    default: {
      const never: never = entry.kind;
      throw refuse(where, `unknown kind ${JSON.stringify(never)}`);
    }
  }
}

/**
 * `input` for the schema: a copy in which each entry's source given as an object (an fd) is
 * '/', and those sources by the entry's index.
 */
function setFdSourcesAside(input: unknown): { checked: unknown; fdSources: Map<number, object> } {
  const fdSources = new Map<number, object>();
  if (typeof input !== 'object' || input === null || !('mounts' in input) || !Array.isArray(input.mounts)) return { checked: input, fdSources };
  const entries: unknown[] = input.mounts;
  const checked = {
    ...input,
    mounts: entries.map((entry, index) => {
      if (typeof entry !== 'object' || entry === null || !('source' in entry)) return entry;
      const { source } = entry;
      if (typeof source !== 'object' || source === null) return entry;
      fdSources.set(index, source);
      return { ...entry, source: '/' };
    }),
  };
  return { checked, fdSources };
}

/** The built-in plan: proc, sysfs read-only (both hardened), tmpfs on tmp. */
export function defaultPlan(): Plan {
  return parsePlan(structuredClone(DEFAULTS.plan));
}
