// What a hardened proc and a hardened sysfs cover, and with which attributes: one list per
// filesystem kind, the only lists of them (cover.ts makes them). The names are those bubblewrap
// covers in `--proc` (cover_proc_dirs in bubblewrap.c), runc's defaults for every container
// (linux.readonlyPaths and linux.maskedPaths of `runc spec`, libcontainer/specconv/example.go),
// and what Docker (daemon/pkg/oci/defaults.go) and Podman (containers/common's
// pkg/config/default.go) mask since; each says why. Without them a uid-0 action with no
// capability at all can still write many sysctls (vm.drop_caches: only the file mode is checked;
// FACTS.md) and read kernel-wide state, and the host's firmware tables, through proc and sysfs.
//
// Every name is resolved beneath the mount's own fd, never through the root. Names this kernel
// lacks (sysrq-trigger here; all of proc's under subset=pid; powercap without a RAPL driver) are
// skipped, not an error: entries come and go with kernel configs and modules, and a missing one
// exposes nothing. A name present but of the other type (a directory where a file is listed)
// fails the attach: the cover could not be made, and nothing is ever left half covered.
//
// Left out on purpose, of those lists:
// - containers/common's /sys/fs/selinux: a fresh sysfs has only an empty mount point there (the
//   host's selinuxfs is a mount of its own, which a new sysfs does not carry): nothing to hide.
// - Docker's and containers/common's /sys/devices/system/cpu/cpu*/thermal_throttle (the thermal
//   side channel, GHSA-6fw5-f8r9-fgfm): one cover per CPU, on the hosts that have it (Intel,
//   bare metal). At about 30 µs a cover (bench/RESULTS.md: 210 µs for the seven here), a host
//   of 192 CPUs would pay some 6 ms an action, ten times what a whole attach and detach of the
//   default plan costs. The same advisory's /proc/interrupts, whose "TRM" line counts the same
//   thermal events, is masked below, at the cost of one cover.
import { constants as C } from '../linux/index.js';

export type CoverHow = 'readonly' | 'masked';

/** The filesystems whose mounts can be hardened: a plan entry's `hardened`. */
export type CoveredKind = 'proc' | 'sysfs';

export interface CoverSpec {
  /** A path beneath the filesystem's root: one component, or several joined by '/'. */
  name: string;
  /**
   * readonly: a bind of itself, read-only (the action can still read it: sysctls it needs to
   * know, /proc/sys/kernel/osrelease). masked: a file gets the host's /dev/null bound over it
   * (reads give nothing), a directory an empty read-only tmpfs, as runc masks.
   */
  how: CoverHow;
  directory: boolean;
}

/** A proc cover: the name it had when proc was the only filesystem covered. */
export type ProcCoverSpec = CoverSpec;

export const PROC_COVERS: readonly CoverSpec[] = [
  // bubblewrap's four, and runc's readonlyPaths (which add fs): every writable kernel-wide
  // setting lives under these. sysrq-trigger would let root crash or reboot the host.
  { name: 'sys', how: 'readonly', directory: true },
  { name: 'sysrq-trigger', how: 'readonly', directory: false },
  { name: 'irq', how: 'readonly', directory: true },
  { name: 'bus', how: 'readonly', directory: true },
  { name: 'fs', how: 'readonly', directory: true },
  // runc's maskedPaths that are files: kernel memory (kcore), every key the kernel holds
  // (keys), and timer and scheduler internals that leak addresses and other tasks' activity.
  { name: 'kcore', how: 'masked', directory: false },
  { name: 'keys', how: 'masked', directory: false },
  { name: 'timer_list', how: 'masked', directory: false },
  { name: 'sched_debug', how: 'masked', directory: false },
  { name: 'latency_stats', how: 'masked', directory: false },
  { name: 'timer_stats', how: 'masked', directory: false },
  // Every user's key count and key quota used, host-wide, by uid (in no runtime's list): what
  // uid 0 of the host or another user holds in its keyrings, and how near its quota it is.
  { name: 'key-users', how: 'masked', directory: false },
  // Docker's and containers/common's since 2025 (GHSA-6fw5-f8r9-fgfm): per-CPU interrupt
  // counts, whose thermal event line ("TRM") is a side channel on what the host runs.
  { name: 'interrupts', how: 'masked', directory: false },
  // runc's maskedPaths that are directories: firmware and driver interfaces, some writable.
  { name: 'acpi', how: 'masked', directory: true },
  { name: 'asound', how: 'masked', directory: true },
  { name: 'scsi', how: 'masked', directory: true },
];

export const SYSFS_COVERS: readonly CoverSpec[] = [
  // runc's one sysfs entry in maskedPaths: the firmware's own tables (ACPI's DSDT and the rest,
  // the SMBIOS table in dmi/, EFI's) describe the host's hardware, and a root action reads them.
  { name: 'firmware', how: 'masked', directory: true },
  // Docker's and containers/common's (GHSA-jq35-85cj-fj4p; not runc's): the RAPL energy
  // counters behind the PLATYPUS power side channel, which reveals what the host's CPUs compute.
  { name: 'devices/virtual/powercap', how: 'masked', directory: true },
];

/** Each hardened filesystem's list, by kind. */
export const COVERS: Readonly<Record<CoveredKind, readonly CoverSpec[]>> = { proc: PROC_COVERS, sysfs: SYSFS_COVERS };

/**
 * Mount attributes of each kind of cover. Read-only throughout: that is the point. A bind of
 * /dev/null must not be nodev (it would no longer open as the null device); everything else is
 * nosuid, nodev, noexec as proc and sysfs themselves.
 */
export const COVER_ATTRIBUTES = {
  readonly: C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC,
  maskedFile: C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NOEXEC,
  maskedDirectory: C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC,
} as const;

/** What a masked file gets bound over it: the engine's own namespace's null device. */
export const NULL_DEVICE = '/dev/null';
