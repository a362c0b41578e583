// Linux capabilities by name (linux/capability.h; the same numbers on every architecture), and
// this process's own sets as the kernel reports them. No policy: which capability an action
// keeps is src/sandbox/'s decision.
import { readFileSync } from 'node:fs';

export const CAPABILITIES = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
} as const;

export type CapabilityName = keyof typeof CAPABILITIES;

/** Whether `name` is one of the table's (its own keys only: "toString" is not a capability). */
export function isCapabilityName(name: string): name is CapabilityName {
  return Object.hasOwn(CAPABILITIES, name);
}

export const CAPABILITY_NAMES = Object.keys(CAPABILITIES).filter(isCapabilityName);

/** A set of capabilities as the kernel's bit mask. */
export function capabilityMask(names: Iterable<CapabilityName>): bigint {
  let mask = 0n;
  for (const name of names) mask |= 1n << BigInt(CAPABILITIES[name]);
  return mask;
}

/** The names in a mask, in the kernel's order (bits above the table are ignored). */
export function capabilityNames(mask: bigint): CapabilityName[] {
  return CAPABILITY_NAMES.filter((name) => (mask >> BigInt(CAPABILITIES[name])) & 1n);
}

export interface CapabilitySets {
  effective: bigint;
  permitted: bigint;
  bounding: bigint;
}

/** This process's capability sets (/proc/self/status), or undefined where they cannot be read. */
export function ownCapabilities(): CapabilitySets | undefined {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    return match?.[1] === undefined ? undefined : BigInt(`0x${match[1]}`);
  };
  const effective = field('CapEff');
  const permitted = field('CapPrm');
  const bounding = field('CapBnd');
  if (effective === undefined || permitted === undefined || bounding === undefined) return undefined;
  return { effective, permitted, bounding };
}
