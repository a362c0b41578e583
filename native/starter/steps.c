#define _GNU_SOURCE
#include "steps.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "cleanup.h"
#include "filter.h"
#include "kernel.h"
#include "protocol.h"
#include "signals.h"
#include "user-limits.h"

/*
 * The per-action steps, in the order bubblewrap's main() and runc's standard_init_linux.go take
 * them. Each is a small function that returns -1 with errno set; the two lists below
 * (contain, start_action) run them in order and report a failure by the step's name
 * (START_STEPS, the table src/sandbox/start-steps.ts holds).
 */

/*
 * A recursive detached copy of the root, taken while still in the caller's namespace (a copy can
 * only be taken of a mount in one's own namespace), made private so that nothing mounted or
 * unmounted in it can propagate to the caller's mounts, and nosuid. With --root-copy the root fd
 * is already such a copy, made by the caller for this action alone with its mounts on it: it is
 * attached itself (a detached tree can be moved into any namespace), so that it dies with this
 * namespace, and nothing is copied a second time.
 */
static int copy_root(const struct options *o) {
  cleanup_close int tree = o->root_copy
                               ? fcntl(ROOT_FD, F_DUPFD_CLOEXEC, 0)
                               : (int)syscall(SYS_open_tree, ROOT_FD, "", OPEN_TREE_CLONE_ | AT_RECURSIVE_ | AT_EMPTY_PATH | O_CLOEXEC);
  if (tree < 0) return -1;
  struct mount_attr_ attr = {.attr_set = MOUNT_ATTR_NOSUID_, .propagation = MS_PRIVATE_};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE_, &attr, sizeof attr) != 0) return -1;
  return take_fd(&tree);
}

/* New mount, IPC, UTS and cgroup (and network) namespaces; every mount of the copied namespace
 * made private first, or unmounting the old root below would propagate to the caller's peers.
 * The cgroup namespace is rooted at the cgroups the action starts in, in every hierarchy (v1 and
 * v2 alike): /proc/self/cgroup shows "/" there, not the runner's cgroup paths. */
static int enter_namespaces(const struct options *o) {
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | (o->network_none ? CLONE_NEWNET : 0);
  if (unshare(flags) != 0) return -1;
  return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

/* The copy attached over "/" and entered by its fd, for pivot_root. */
static int attach_over_root(int tree) {
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_) != 0) return -1;
  return fchdir(tree);
}

/* pivot_root(".", ".") and the old root (now stacked on top) detached: nothing of the caller's
 * filesystem is left in the namespace, so neither `..`, nor a chroot, nor a user namespace of
 * the action's can reach it (a chroot would leave the old root under the new one). */
static int pivot_into_cwd(void) {
  if (syscall(SYS_pivot_root, ".", ".") != 0) return -1;
  /* pivot_root(".", ".") stacks the old root on the new one at "/": "." is now the old root. */
  return umount2(".", MNT_DETACH);
}

/* For --root chroot: an empty tmpfs over "/", the root on its directory "root", reached only
 * through fds, and entered by its fd (main.c says why not directly over "/"). */
static int attach_on_tmpfs(int tree) {
  cleanup_close int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC_);
  if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "mode", "0755", 0) != 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) != 0)
    return -1;
  cleanup_close int base = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC_, MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NODEV_ | MOUNT_ATTR_NOEXEC_);
  if (base < 0 || syscall(SYS_move_mount, base, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_) != 0) return -1;
  if (mkdirat(base, "root", 0755) != 0) return -1;
  if (syscall(SYS_move_mount, tree, "", base, "root", MOVE_MOUNT_F_EMPTY_PATH_) != 0) return -1;
  return fchdir(tree);
}

/* A new network namespace has only lo, and down: bring it up, as bubblewrap does. */
static int bring_up_loopback(void) {
  cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return -1;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* The working directory, beneath the root as the action now sees it (after a pivot "/" is the
 * root; without one the caller's root fd is). No symlink followed, `..` cannot leave. */
static int enter_working_directory(const struct options *o) {
  struct open_how_ how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_IN_ROOT_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_};
  cleanup_close int new_root = -1;
  int base = ROOT_FD;
  if (o->root != ROOT_NONE && (base = new_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return -1;
  cleanup_close int cwd = (int)syscall(SYS_openat2, base, o->cwd, &how, sizeof how);
  if (cwd < 0) return -1;
  return fchdir(cwd);
}

/*
 * The action's own namespaces, rooted at the input root. Called after the gate opened, so the
 * caller's prestart mounts (proc, sys, tmp, and whatever the worker mounted) are in the root.
 */
void contain(const struct options *o) {
  int rooted = o->root != ROOT_NONE;
  cleanup_close int tree = -1;
  if (rooted && (tree = copy_root(o)) < 0) fail(STEP_mount);
  if (enter_namespaces(o) != 0) fail(STEP_namespaces);
  if (o->root == ROOT_PIVOT && attach_over_root(tree) != 0) fail(STEP_mount);
  if (o->root == ROOT_PIVOT && pivot_into_cwd() != 0) fail(STEP_pivot_root);
  if (o->root == ROOT_CHROOT && attach_on_tmpfs(tree) != 0) fail(STEP_mount);
  if (o->root == ROOT_CHROOT && chroot(".") != 0) fail(STEP_chroot);
  if (rooted && chdir("/") != 0) fail(STEP_chdir);
  if (o->network_none && bring_up_loopback() != 0) fail(STEP_network);
  if (enter_working_directory(o) != 0) fail(STEP_chdir);
  close(ROOT_FD);
}

/* PR_CAPBSET_DROP needs CAP_SETPCAP even for a capability already absent: drop only present ones. */
static int drop_bounding_set(uint64_t keep) {
  for (int cap = 0; cap < 64; cap++) {
    int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0) break; /* past the kernel's last capability */
    if (present == 1 && !(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return -1;
  }
  return 0;
}

/* setuid from 0 clears the permitted and effective sets; inheritable is cleared below. */
static int change_user(const struct options *o) {
  gid_t list[64];
  size_t n = 0;
  for (const char *g = o->groups; g != NULL && *g != '\0' && n < 64;) {
    char *end;
    list[n++] = (gid_t)strtoul(g, &end, 10);
    g = *end == ',' ? end + 1 : NULL;
  }
  if (setgroups(n, list) != 0 || setgid((gid_t)o->gid) != 0) return -1;
  return setuid((uid_t)o->uid);
}

static int limit_capabilities(uint64_t keep) {
  struct cap_header_ header = {.version = LINUX_CAPABILITY_VERSION_3_, .pid = 0};
  struct cap_data_ data[2];
  if (syscall(SYS_capget, &header, data) != 0) return -1;
  uint64_t permitted = ((uint64_t)data[1].permitted << 32 | data[0].permitted) & keep;
  for (int i = 0; i < 2; i++) {
    data[i].permitted = data[i].effective = (uint32_t)(permitted >> (32 * i));
    data[i].inheritable = 0;
  }
  return (int)syscall(SYS_capset, &header, data);
}

/*
 * A new anonymous session keyring (as runc gives each container one), joined as the action's
 * user so that the one key it costs is charged to that uid: the caller's session keyring is not
 * the action's. Keyrings belong to the user namespace, not to any namespace an action gets; the
 * filter refuses keyctl, add_key and request_key, so nothing else of them is within its reach.
 * A kernel without keyrings (ENOSYS) has nothing to share; nor does a caller whose own seccomp
 * profile refuses keyctl (EPERM: Docker's default profile does, to every container), for that
 * filter is the action's too.
 */
static int join_own_keyring(void) {
  if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, NULL) >= 0 || errno == ENOSYS || errno == EPERM) return 0;
  return -1;
}

/* Kernels before 4.3 have no ambient set: nothing to clear there. */
static int clear_ambient(void) {
  if (prctl(PR_CAP_AMBIENT_, PR_CAP_AMBIENT_CLEAR_ALL_, 0, 0, 0) != 0 && errno != EINVAL) return -1;
  return 0;
}

/* Exec ARGV[0] as the action's PATH finds it inside the (already entered) root. */
static int exec_in_path(char **argv, char **envp) {
  if (strchr(argv[0], '/') != NULL) {
    execve(argv[0], argv, envp);
    return errno;
  }
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (char **e = envp; *e != NULL; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int saved = ENOENT;
  char candidate[PATH_MAX];
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t len = (size_t)(end - p);
    /* An empty element means the working directory, as in execvp. */
    if (snprintf(candidate, sizeof candidate, "%.*s%s%s", (int)len, p, len ? "/" : "", argv[0]) < (int)sizeof candidate) {
      execve(candidate, argv, envp);
      if (errno == EACCES) saved = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) return errno;
    }
    if (*end == '\0') break;
    p = end;
  }
  return saved;
}

/*
 * The action itself, in order: bounding set, user, session keyring, capability sets, ambient,
 * NO_NEW_PRIVS, per-user limits, only fds 0-2, default signals, the seccomp filter (and its
 * listener to the init's broker), exec. Never returns.
 */
void start_action(const struct options *o, char **envp) {
  uint64_t keep = o->uid >= 0 ? 0 : o->caps;
  if (drop_bounding_set(keep) != 0) fail(STEP_capabilities);
  if (o->gid >= 0 && change_user(o) != 0) fail(STEP_credentials);
  if (join_own_keyring() != 0) fail(STEP_keyring);
  if (limit_capabilities(keep) != 0) fail(STEP_capabilities);
  if (clear_ambient() != 0) fail(STEP_capabilities);
  /* A setuid or file-capability binary in the input root gains nothing, whoever runs it. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(STEP_no_new_privs);
  /* Bounded message queues (and, by its filter below, its own inotify instances): nothing it
   * charges per user starves the host. */
  if (limit_per_user() != 0) fail(STEP_limits);
  /* A change of user cleared the parent-death signal: set it again. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* Whatever the caller inherited without CLOEXEC ends here; fd 5 (CLOEXEC) stays until exec so
   * that a failed exec can still be reported. */
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC_) != 0) fail(STEP_fds);
  default_signals();
  /* Last: nothing of ours runs under it but the listener's send (sendmsg, which it allows), the
   * exec (and, should it fail, the report). With a PID namespace, it hands inotify to the broker. */
  int listener = -1;
  if (load_filter(o, broker_wanted() ? &listener : NULL) != 0) fail(STEP_seccomp);
  if (broker_send(listener) != 0) fail(STEP_limits);
  errno = exec_in_path(o->argv, envp);
  fail(STEP_exec);
}
