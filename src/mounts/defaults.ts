// Every default of the engine, in one place. They follow what container runtimes use for the
// same filesystems (runc/crun config.json defaults), plus a size cap on tmpfs.
import type { MountKind } from './plan.js';
import type { MountPlan } from './generated/mount-plan.js';

export interface Attributes {
  readOnly: boolean;
  nosuid: boolean;
  nodev: boolean;
  noexec: boolean;
  nosymfollow: boolean;
  nodiratime: boolean;
  atime: 'relatime' | 'noatime' | 'strictatime';
}

const none: Attributes = {
  readOnly: false,
  nosuid: false,
  nodev: false,
  noexec: false,
  nosymfollow: false,
  nodiratime: false,
  atime: 'relatime',
};

export const DEFAULTS = {
  attributes: {
    proc: { ...none, nosuid: true, nodev: true, noexec: true },
    sysfs: { ...none, readOnly: true, nosuid: true, nodev: true, noexec: true },
    tmpfs: { ...none, nosuid: true, nodev: true },
    bind: { ...none, nosuid: true, nodev: true },
  } satisfies Record<MountKind, Attributes>,
  options: {
    proc: {},
    sysfs: {},
    // 512 MiB: tmpfs pages are only used when written, but an action filling /tmp must hit
    // ENOSPC rather than take half the worker's memory (the kernel's default cap).
    tmpfs: { mode: '1777', size: '512m' },
    bind: {},
  } satisfies Record<MountKind, Record<string, string>>,
  /**
   * A proc entry is hardened unless its plan says otherwise: its kernel-wide files are covered
   * read-only or masked as it is attached (the list and why: covers.ts). A proc without
   * them lets a uid-0 action write sysctls such as vm.drop_caches whatever its capabilities.
   */
  procHardened: true,
  /**
   * A sysfs entry too: the host's firmware tables and the RAPL energy counters are masked as it
   * is attached (covers.ts). Without that a root action reads the ACPI tables of the host.
   */
  sysfsHardened: true,
  /**
   * The bounds of an untrusted plan (one from container annotations): see untrusted.ts. Where
   * proc and sysfs may go (the container's own /proc and /sys, nowhere it could hide them), and
   * the tmpfs limits, in the kernel's syntax (kernel-size.ts).
   */
  untrusted: {
    targets: { proc: 'proc', sysfs: 'sys' },
    tmpfs: {
      // The kernel's own default for a tmpfs without size: no more than an unconfigured one gets.
      sizePercent: '50%',
      // A fixed bound pure code can check (it cannot know this machine's memory): room for a big
      // build's /tmp, not for a big host's memory.
      size: '16g',
      // Counted in pages, whose size pure code cannot know: 256k is 16g at the largest page size
      // (64 KiB), 1g at 4 KiB pages; size is the way to ask for more.
      nr_blocks: '256k',
      // Each inode costs about 1 KiB of kernel memory that size does not count: 1m inodes is at
      // most about 1 GiB of it, and more files than a build's /tmp needs.
      nr_inodes: '1m',
    },
  },
  /** Binds take submounts of the source along (rbind), as runtimes do. */
  bindRecursive: true,
  /** Mode of mountpoint directories the engine creates. */
  mountpointMode: 0o755,
  /** Where records of attached mounts live, for a later process to tear down. */
  stateDirectory: '/run/mountat',
  /** The plan used when none is given: what a chrooted build action needs. */
  plan: {
    mounts: [
      { target: 'proc', kind: 'proc' },
      { target: 'sys', kind: 'sysfs' },
      { target: 'tmp', kind: 'tmpfs' },
    ],
  } satisfies MountPlan,
} as const;

/** Options each kind accepts; values are the kernel's to judge (it explains refusals). */
export const ALLOWED_OPTIONS: Record<MountKind, ReadonlySet<string>> = {
  proc: new Set(['hidepid', 'subset', 'gid']),
  sysfs: new Set(),
  tmpfs: new Set(['size', 'nr_blocks', 'nr_inodes', 'mode', 'uid', 'gid', 'huge', 'mpol', 'inode32', 'inode64', 'noswap']),
  // `recursive` is the engine's own (AT_RECURSIVE on open_tree), not a filesystem option.
  bind: new Set(['recursive']),
};
