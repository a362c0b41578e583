// What a hardened proc covers, and with which attributes: the one list of them. The names are
// those bubblewrap covers in `--proc` (cover_proc_dirs in bubblewrap.c) and runc's defaults for
// every container (linux.readonlyPaths and linux.maskedPaths of `runc spec`). Without
// them a uid-0 action with no capability at all can still write many sysctls (vm.drop_caches:
// only the file mode is checked; FACTS.md) and read kernel-wide state through proc.
//
// Every name is resolved beneath the proc mount's own fd, never through the root. Names this
// kernel's proc lacks (sysrq-trigger here; all of them under subset=pid) are skipped, not an
// error: proc entries come and go with kernel configs and modules, and a missing one exposes
// nothing. A name present but of the other type (a directory where a file is listed) fails the
// attach: the cover could not be made, and proc is never left half covered.
import { constants as C } from '../linux/index.js';

export type CoverHow = 'readonly' | 'masked';

export interface ProcCoverSpec {
  /** One component beneath proc's root. */
  name: string;
  /**
   * readonly: a bind of itself, read-only (the action can still read it: sysctls it needs to
   * know, /proc/sys/kernel/osrelease). masked: a file gets the host's /dev/null bound over it
   * (reads give nothing), a directory an empty read-only tmpfs, as runc masks.
   */
  how: CoverHow;
  directory: boolean;
}

export const PROC_COVERS: readonly ProcCoverSpec[] = [
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
  // runc's maskedPaths that are directories: firmware and driver interfaces, some writable.
  { name: 'acpi', how: 'masked', directory: true },
  { name: 'asound', how: 'masked', directory: true },
  { name: 'scsi', how: 'masked', directory: true },
];

/**
 * Mount attributes of each kind of cover. Read-only throughout: that is the point. A bind of
 * /dev/null must not be nodev (it would no longer open as the null device); everything else is
 * nosuid, nodev, noexec as proc itself.
 */
export const COVER_ATTRIBUTES = {
  readonly: C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC,
  maskedFile: C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NOEXEC,
  maskedDirectory: C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC,
} as const;

/** What a masked file gets bound over it: the engine's own namespace's null device. */
export const NULL_DEVICE = '/dev/null';
