// What mountat's own seccomp filter refuses every action, and why: one table, read by the
// starter too (scripts/generate-types.mjs writes native/starter/seccomp-policy.h from it, and
// `--check` fails when that is stale). The filter allows everything else; it refuses with an
// errno, never by killing; and it refuses every system call of a foreign ABI (i386 and x32 on
// x86_64, AArch32 on aarch64) with ENOSYS. native/starter/seccomp.c builds it with libseccomp.
//
// Read against Docker's default profile (moby/profiles seccomp/default.json), containers/common's
// (pkg/seccomp/seccomp.json), bubblewrap's --disable-userns and runc's libcontainer/seccomp. Left
// out on purpose, though Docker's or podman's profile refuses them or the issue named them:
// clock_adjtime (glibc's ntp_gettime reads the clock through it; setting the clock needs
// CAP_SYS_TIME; Docker allows it), ptrace and
// process_vm_* (sanitizers and debuggers use them; the kernel checks ptrace access; Docker allows
// them since Linux 4.8), the NUMA calls (JVMs use them).

/**
 * How a refusal applies:
 * - `by-name`: every call, unless `allowSyscalls` names it;
 * - `unless-admin`: every call, unless the action keeps CAP_SYS_ADMIN or may make user namespaces
 *   (in a user namespace of its own it holds CAP_SYS_ADMIN over what it then makes), or
 *   `allowSyscalls` names it: Docker's rule for the mount calls;
 * - `by-arguments`: calls with certain arguments only (`personality`, `socket`), each a rule of its
 *   own in native/starter/seccomp.c; `allowSyscalls` naming it drops the rule;
 * - `user-namespaces`: what keeps user namespaces closed, a rule of its own each; open exactly when
 *   user namespaces are allowed (`allowUserNamespaces`), never by `allowSyscalls`.
 */
export type SyscallRule = 'by-name' | 'unless-admin' | 'by-arguments' | 'user-namespaces';

export interface RefusedSyscall {
  /** Its name as libseccomp and the kernel's headers spell it; skipped on an architecture without it. */
  name: string;
  /** What the call returns instead: EPERM as Docker's profile, ENOSYS where a caller must fall back. */
  errno: 'EPERM' | 'ENOSYS';
  rule: SyscallRule;
  /** Why, in one short phrase. */
  why: string;
}

const mounts = 'mounts: CAP_SYS_ADMIN only (Docker)';

/** The filter's refusals, in the order it checks them. */
export const REFUSED_SYSCALLS: readonly RefusedSyscall[] = [
  { name: 'io_uring_setup', errno: 'EPERM', rule: 'by-name', why: "io_uring: I/O outside seccomp's view, frequent kernel bugs (Docker)" },
  { name: 'io_uring_enter', errno: 'EPERM', rule: 'by-name', why: 'io_uring' },
  { name: 'io_uring_register', errno: 'EPERM', rule: 'by-name', why: 'io_uring' },
  { name: 'kexec_load', errno: 'EPERM', rule: 'by-name', why: 'loads a new kernel' },
  { name: 'kexec_file_load', errno: 'EPERM', rule: 'by-name', why: 'loads a new kernel' },
  { name: 'init_module', errno: 'EPERM', rule: 'by-name', why: 'loads a kernel module' },
  { name: 'finit_module', errno: 'EPERM', rule: 'by-name', why: 'loads a kernel module' },
  { name: 'delete_module', errno: 'EPERM', rule: 'by-name', why: 'unloads a kernel module' },
  { name: 'create_module', errno: 'EPERM', rule: 'by-name', why: 'obsolete module call' },
  { name: 'query_module', errno: 'EPERM', rule: 'by-name', why: 'obsolete module call' },
  { name: 'get_kernel_syms', errno: 'EPERM', rule: 'by-name', why: 'obsolete module call' },
  { name: 'bpf', errno: 'EPERM', rule: 'by-name', why: 'eBPF programs in the kernel: frequent kernel bugs' },
  { name: 'userfaultfd', errno: 'EPERM', rule: 'by-name', why: "stalls the kernel's page faults: an exploit's tool" },
  { name: 'perf_event_open', errno: 'EPERM', rule: 'by-name', why: 'performance counters: kernel addresses and timing' },
  { name: 'lookup_dcookie', errno: 'EPERM', rule: 'by-name', why: "profiling: names the host's files by cookie" },
  { name: 'acct', errno: 'EPERM', rule: 'by-name', why: "switches the host's process accounting" },
  { name: 'swapon', errno: 'EPERM', rule: 'by-name', why: "the host's swap" },
  { name: 'swapoff', errno: 'EPERM', rule: 'by-name', why: "the host's swap" },
  { name: 'reboot', errno: 'EPERM', rule: 'by-name', why: 'reboots, or loads a kexec kernel' },
  { name: 'open_by_handle_at', errno: 'EPERM', rule: 'by-name', why: 'opens any file by handle, beneath no root' },
  { name: 'name_to_handle_at', errno: 'EPERM', rule: 'by-name', why: 'file handles, for a process that opens them beneath no root (Docker allows it)' },
  { name: 'keyctl', errno: 'EPERM', rule: 'by-name', why: "keyrings: the host's keys and key quota (not namespaced)" },
  { name: 'add_key', errno: 'EPERM', rule: 'by-name', why: 'keyrings' },
  { name: 'request_key', errno: 'EPERM', rule: 'by-name', why: 'keyrings' },
  { name: 'quotactl', errno: 'EPERM', rule: 'by-name', why: "disk quotas of the host's filesystems" },
  { name: 'quotactl_fd', errno: 'EPERM', rule: 'by-name', why: 'disk quotas' },
  { name: 'syslog', errno: 'EPERM', rule: 'by-name', why: "reads or clears the host's kernel log" },
  { name: 'nfsservctl', errno: 'EPERM', rule: 'by-name', why: 'the kernel NFS server (gone since Linux 3.1)' },
  { name: 'uselib', errno: 'EPERM', rule: 'by-name', why: 'obsolete a.out library loading' },
  { name: 'ustat', errno: 'EPERM', rule: 'by-name', why: 'obsolete: any filesystem by device number' },
  { name: 'sysfs', errno: 'EPERM', rule: 'by-name', why: 'obsolete filesystem-type query' },
  { name: '_sysctl', errno: 'EPERM', rule: 'by-name', why: 'obsolete binary sysctl' },
  { name: 'vm86', errno: 'EPERM', rule: 'by-name', why: 'virtual 8086 mode' },
  { name: 'vm86old', errno: 'EPERM', rule: 'by-name', why: 'virtual 8086 mode' },
  { name: 'iopl', errno: 'EPERM', rule: 'by-name', why: 'raw I/O ports' },
  { name: 'ioperm', errno: 'EPERM', rule: 'by-name', why: 'raw I/O ports' },
  { name: 'settimeofday', errno: 'EPERM', rule: 'by-name', why: "sets the host's clock" },
  { name: 'clock_settime', errno: 'EPERM', rule: 'by-name', why: "sets the host's clock" },
  { name: 'stime', errno: 'EPERM', rule: 'by-name', why: "sets the host's clock" },
  { name: 'mount', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'umount', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'umount2', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'pivot_root', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'mount_setattr', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'move_mount', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'open_tree', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'fsopen', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'fsconfig', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'fsmount', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'fspick', errno: 'EPERM', rule: 'unless-admin', why: mounts },
  { name: 'fanotify_init', errno: 'EPERM', rule: 'unless-admin', why: 'watches whole filesystems: CAP_SYS_ADMIN only (Docker)' },
  {
    name: 'personality',
    errno: 'EPERM',
    rule: 'by-arguments',
    why: 'only 0, PER_LINUX32, UNAME26 and the query: no READ_IMPLIES_EXEC, no ADDR_NO_RANDOMIZE (Docker)',
  },
  { name: 'socket', errno: 'EPERM', rule: 'by-arguments', why: "AF_VSOCK (the hypervisor's services) and AF_ALG (kernel crypto) (Docker)" },
  { name: 'unshare', errno: 'EPERM', rule: 'user-namespaces', why: 'with CLONE_NEWUSER: every capability in a user namespace' },
  { name: 'clone', errno: 'EPERM', rule: 'user-namespaces', why: 'with CLONE_NEWUSER' },
  { name: 'clone3', errno: 'ENOSYS', rule: 'user-namespaces', why: "its flags are beyond seccomp's reach: ENOSYS, and glibc falls back to clone" },
  { name: 'setns', errno: 'EPERM', rule: 'user-namespaces', why: 'into a user namespace (CLONE_NEWUSER, or 0: any kind)' },
];

/**
 * Why a list of system calls to allow back may not name NAME, or undefined where it may: it must
 * be a refusal of the filter, and not one that keeps user namespaces closed (those open with user
 * namespaces only, so that allowing clone3 back cannot open them); `userNamespacesOption` is how
 * the caller's operator opens them.
 */
export function whyNotAllowable(name: string, userNamespacesOption: string): string | undefined {
  const refusal = REFUSED_SYSCALLS.find((entry) => entry.name === name);
  if (refusal === undefined) return "mountat's seccomp filter does not refuse it";
  if (refusal.rule === 'user-namespaces') return `it is refused to keep user namespaces closed: ${userNamespacesOption} opens them`;
  return undefined;
}
