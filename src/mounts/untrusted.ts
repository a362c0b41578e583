// The bounds of an untrusted plan entry, in one place: the plan parser applies them to every
// entry it is told not to trust (those from container annotations, set by whoever creates the
// container). An operator's plan is trusted as it is; an untrusted entry may choose and tune
// proc, sysfs and tmpfs but never weaken them or reach outside the container's own root:
//
// - no bind: it would mount a host path into the container;
// - proc only at `proc`, sysfs only at `sys`: runc masks and write-protects only /proc and
//   /sys, so a proc at `host-proc` would be a second, bare one;
// - no attribute the kind has on by default turned off (nosuid, nodev, noexec; sysfs read-only);
// - no proc or sysfs with hardened: false;
// - tmpfs size, nr_blocks and nr_inodes within the limits of DEFAULTS.untrusted, and never 0,
//   which tmpfs reads as unlimited.
//
// Pure: no system calls, so every refusal is made before anything is touched.
import { MountatError } from '../base/index.js';
import type { MountEntry } from './generated/mount-plan.js';
import { DEFAULTS } from './defaults.js';
import { parseKernelSize } from './kernel-size.js';

type Refuse = (field: string, why: string) => never;

const LIMITED = ['size', 'nr_blocks', 'nr_inodes'] as const;
type Limited = (typeof LIMITED)[number];

/** A limit of DEFAULTS.untrusted as a number; a typo there fails at load, not at a refusal. */
function limitOf(text: string): bigint {
  const size = parseKernelSize(text, true);
  if (!size) throw new MountatError('internal', `DEFAULTS.untrusted: ${JSON.stringify(text)} is not a kernel size`);
  return 'percent' in size ? size.percent : size.count;
}

const LIMITS = DEFAULTS.untrusted.tmpfs;
const MAX = {
  sizePercent: limitOf(LIMITS.sizePercent),
  size: limitOf(LIMITS.size),
  nr_blocks: limitOf(LIMITS.nr_blocks),
  nr_inodes: limitOf(LIMITS.nr_inodes),
};

/** The limit of `key`, as a refusal states it. */
function limitText(key: Limited): string {
  return key === 'size' ? `${LIMITS.sizePercent} or ${LIMITS.size}` : LIMITS[key];
}

function checkTmpfsLimit(key: Limited, value: unknown, refuse: Refuse): void {
  const field = `options.${key}`;
  const limit = limitText(key);
  if (typeof value !== 'string' && typeof value !== 'number')
    refuse(field, `an untrusted plan must give a limit (at most ${limit}), not ${JSON.stringify(value)}`);
  const text = String(value);
  const size = parseKernelSize(text, key === 'size');
  if (!size)
    refuse(
      field,
      `${JSON.stringify(text)} is not a limit an untrusted plan may give (decimal digits, then k, m, g, t, p or e${key === 'size' ? ', or %' : ''})`,
    );
  const [number, max] = 'percent' in size ? [size.percent, MAX.sizePercent] : [size.count, MAX[key]];
  if (number === 0n) refuse(field, `${JSON.stringify(text)} means unlimited to tmpfs; an untrusted plan must stay within ${limit}`);
  if (number > max) refuse(field, `${JSON.stringify(text)} is over the limit for an untrusted plan (at most ${limit})`);
}

/**
 * Refuse what an untrusted entry may not ask for, through `refuse(field, why)`. `target` is
 * the entry's normalised target. The source is not looked at: a bind is refused whatever it binds.
 */
export function checkUntrustedEntry(entry: Omit<MountEntry, 'source'>, target: string, refuse: Refuse): void {
  if (entry.kind === 'bind') refuse('kind', "an untrusted plan may not bind host paths (binds come only from the operator's plan file)");
  if (entry.kind === 'proc' || entry.kind === 'sysfs') {
    const allowed = DEFAULTS.untrusted.targets[entry.kind];
    if (target !== allowed) refuse('target', `an untrusted plan may mount ${entry.kind} only at ${JSON.stringify(allowed)}`);
  }
  const on = Object.entries(DEFAULTS.attributes[entry.kind])
    .filter(([, v]) => v === true)
    .map(([k]) => k);
  for (const [key, value] of Object.entries(entry.attributes ?? {})) {
    if (value === false && on.includes(key)) {
      refuse(`attributes.${key}`, `an untrusted plan may not turn off what ${entry.kind} has on by default (${on.join(', ')})`);
    }
  }
  if ((entry.kind === 'proc' || entry.kind === 'sysfs') && entry.hardened === false) refuse('hardened', 'an untrusted plan may not turn it off');
  if (entry.kind === 'tmpfs') {
    for (const key of LIMITED) {
      // Unset (or undefined, from code) keeps the default: DEFAULTS.options.tmpfs, within bounds.
      const value = entry.options?.[key];
      if (value !== undefined) checkTmpfsLimit(key, value, refuse);
    }
  }
}
