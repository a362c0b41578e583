// Which capabilities an action running as root keeps. The default lets a build do what builds do
// as root in a container (own files whatever their owner, chown and chmod them, switch to another
// user, signal its own processes) and nothing that acts outside the action's namespaces. It is
// podman's default set less SYS_CHROOT (pointless after pivot_root, an aid to escapes),
// NET_BIND_SERVICE (privileged ports on the host's network when the network is shared) and
// SETFCAP (file capabilities outlive the action, on files other processes may run).
import { capabilityMask, capabilityNames, type CapabilityName, type CapabilitySets } from '../linux/capabilities.js';

export const DEFAULT_ACTION_CAPABILITIES: readonly CapabilityName[] = [
  'CAP_CHOWN', // chown of files in the input root and /tmp (tar, cp -a, package builds)
  'CAP_DAC_OVERRIDE', // write files whatever their mode, as root can (read-only outputs, `make install`)
  'CAP_FOWNER', // chmod, utime, and set flags on files it does not own
  'CAP_FSETID', // keep setuid/setgid bits on chown/write (installers; they gain nothing: NO_NEW_PRIVS)
  'CAP_KILL', // signal its own processes after switching users
  'CAP_SETGID', // switch group inside (su, setpriv, test fixtures)
  'CAP_SETUID', // switch user inside
  'CAP_SETPCAP', // drop capabilities further for its own children (within this set only)
];

/**
 * Capabilities that act outside the action's namespaces, with what each would let an action do.
 * An operator may still grant them (the runner warns at start-up); the default has none.
 */
export const REACHES_OUTSIDE: Partial<Record<CapabilityName, string>> = {
  CAP_SYS_ADMIN: 'mount, unmount, namespaces, and much of the kernel',
  CAP_MKNOD: "device nodes, e.g. of the host's disks",
  CAP_SYS_PTRACE: 'ptrace every process of its PID namespace, the init that reports its end included',
  CAP_SYS_MODULE: 'load kernel modules',
  CAP_SYS_RAWIO: 'raw I/O ports and /dev/mem',
  CAP_NET_ADMIN: 'reconfigure the host\'s network (with network "host")',
  CAP_NET_RAW: 'raw and packet sockets on the host\'s network: sniff and spoof (with network "host")',
  CAP_NET_BIND_SERVICE: 'listen on the host\'s ports below 1024 (with network "host")',
  CAP_SYS_TIME: "set the host's clock",
  CAP_SYS_CHROOT: 'chroot, the building block of root escapes',
  CAP_DAC_READ_SEARCH: 'open any file of a filesystem by handle (open_by_handle_at), outside the root',
  CAP_SYS_BOOT: 'reboot the host',
  CAP_SYS_NICE: 'real-time priorities that starve the host',
  CAP_SYS_RESOURCE: 'exceed resource limits and reserved space',
  CAP_SYS_PACCT: 'host-wide process accounting',
  CAP_SYS_TTY_CONFIG: 'hang up terminals',
  CAP_LINUX_IMMUTABLE: 'immutable files the worker can no longer remove',
  CAP_IPC_LOCK: 'lock memory beyond its limit',
  CAP_SETFCAP: 'file capabilities on files that outlive the action',
  CAP_AUDIT_WRITE: "write the host's audit log",
  CAP_AUDIT_CONTROL: "configure the host's audit",
  CAP_AUDIT_READ: "read the host's audit log",
  CAP_MAC_ADMIN: "configure the host's LSM",
  CAP_MAC_OVERRIDE: "override the host's LSM",
  CAP_SYSLOG: 'read and clear the kernel log, kernel addresses',
  CAP_WAKE_ALARM: 'wake the host',
  CAP_BLOCK_SUSPEND: 'keep the host from suspending',
  CAP_PERFMON: 'system-wide performance monitoring',
  CAP_BPF: 'load BPF programs',
  CAP_CHECKPOINT_RESTORE: "choose PIDs and read other processes' state",
};

export interface ActionCapabilities {
  /** The mask the starter is told to keep for a root action. */
  mask: bigint;
  /** Asked for, but the caller itself lacks them (in its bounding set): the action cannot get them. */
  lacking: CapabilityName[];
  /** Asked for, and acting outside the action's namespaces (an operator's choice, warned about). */
  reachingOutside: CapabilityName[];
}

/**
 * What a root action will really keep: what was asked for, and of that only what the caller has
 * (the kernel would give no more: a process's capabilities never exceed its bounding set).
 */
export function actionCapabilities(asked: readonly CapabilityName[], own: CapabilitySets | undefined, network: 'host' | 'none' = 'host'): ActionCapabilities {
  const wanted = capabilityMask(asked);
  const available = own?.bounding ?? wanted;
  return {
    mask: wanted & available,
    lacking: capabilityNames(wanted & ~available),
    // In a network namespace of its own, the network capabilities reach only its loopback.
    reachingOutside: asked.filter((name) => REACHES_OUTSIDE[name] !== undefined && !(network === 'none' && NETWORK_ONLY.has(name))),
  };
}

const NETWORK_ONLY: ReadonlySet<CapabilityName> = new Set(['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE']);
