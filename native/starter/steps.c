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
#include "cgroup.h"
#include "cleanup.h"
#include "filter.h"
#include "kernel.h"
#include "protocol.h"
#include "raw.h"
#include "signals.h"
#include "user-limits.h"

/*
 * The per-action steps, in the order bubblewrap's main() and runc's standard_init_linux.go take
 * them. Each is a small function that returns 0 or -errno, calling the kernel through rsys only
 * (raw.h says why); the two lists below (contain, start_action) run them in order and report a
 * failure by the step's name (START_STEPS, the table src/sandbox/start-steps.ts holds).
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
  cleanup_close int tree = o->root_copy ? RSI(SYS_fcntl, ROOT_FD, F_DUPFD_CLOEXEC, 0)
                                        : RSI(SYS_open_tree, ROOT_FD, "", OPEN_TREE_CLONE_ | AT_RECURSIVE_ | AT_EMPTY_PATH | O_CLOEXEC);
  if (tree < 0) return tree;
  struct mount_attr_ attr = {.attr_set = MOUNT_ATTR_NOSUID_, .propagation = MS_PRIVATE_};
  int rc = RSI(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE_, &attr, sizeof attr);
  return rc < 0 ? rc : take_fd(&tree);
}

/* New mount, IPC, UTS and cgroup (and network) namespaces; every mount of the copied namespace
 * made private first, or unmounting the old root below would propagate to the caller's peers.
 * The cgroup namespace is rooted at the cgroups the action starts in, in every hierarchy (v1 and
 * v2 alike): /proc/self/cgroup shows "/" there, not the runner's cgroup paths. */
static int enter_namespaces(const struct options *o) {
  /* An init that shares the server's memory is in none of the action's cgroups: the action makes
   * its own cgroup namespace once in them (enter_own_cgroups). */
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (o->shares_memory ? 0 : CLONE_NEWCGROUP) | (o->network_none ? CLONE_NEWNET : 0);
  int rc = RSI(SYS_unshare, flags);
  return rc < 0 ? rc : RSI(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

/* The copy attached over "/" and entered by its fd, for pivot_root. */
static int attach_over_root(int tree) {
  int rc = RSI(SYS_move_mount, tree, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_);
  return rc < 0 ? rc : RSI(SYS_fchdir, tree);
}

/* pivot_root(".", ".") and the old root (now stacked on top) detached: nothing of the caller's
 * filesystem is left in the namespace, so neither `..`, nor a chroot, nor a user namespace of
 * the action's can reach it (a chroot would leave the old root under the new one). */
static int pivot_into_cwd(void) {
  int rc = RSI(SYS_pivot_root, ".", ".");
  /* pivot_root(".", ".") stacks the old root on the new one at "/": "." is now the old root. */
  return rc < 0 ? rc : RSI(SYS_umount2, ".", MNT_DETACH);
}

/* For --root chroot: an empty tmpfs over "/", the root on its directory "root", reached only
 * through fds, and entered by its fd (main.c says why not directly over "/"). */
static int attach_on_tmpfs(int tree) {
  cleanup_close int fs = RSI(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC_);
  if (fs < 0) return fs;
  int rc = RSI(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "mode", "0755", 0);
  if (rc == 0) rc = RSI(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0);
  if (rc < 0) return rc;
  cleanup_close int base = RSI(SYS_fsmount, fs, FSMOUNT_CLOEXEC_, MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NODEV_ | MOUNT_ATTR_NOEXEC_);
  if (base < 0) return base;
  rc = RSI(SYS_move_mount, base, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_);
  if (rc == 0) rc = RSI(SYS_mkdirat, base, "root", 0755);
  if (rc == 0) rc = RSI(SYS_move_mount, tree, "", base, "root", MOVE_MOUNT_F_EMPTY_PATH_);
  return rc < 0 ? rc : RSI(SYS_fchdir, tree);
}

/* A new network namespace has only lo, and down: bring it up, as bubblewrap does. */
static int bring_up_loopback(void) {
  cleanup_close int s = RSI(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  int rc = s < 0 ? s : RSI(SYS_ioctl, s, SIOCGIFFLAGS, &ifr);
  if (rc < 0) return rc;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return RSI(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
}

/* The working directory, beneath the root as the action now sees it (after a pivot "/" is the
 * root; without one the caller's root fd is). No symlink followed, `..` cannot leave. */
static int enter_working_directory(const struct options *o) {
  struct open_how_ how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_IN_ROOT_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_};
  cleanup_close int new_root = -1;
  int base = ROOT_FD;
  if (o->root != ROOT_NONE && (base = new_root = RSI(SYS_openat, AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return new_root;
  cleanup_close int cwd = RSI(SYS_openat2, base, o->cwd, &how, sizeof how);
  return cwd < 0 ? cwd : RSI(SYS_fchdir, cwd);
}

/*
 * The action's own namespaces, rooted at the input root. Called after the gate opened, so the
 * caller's prestart mounts (proc, sys, tmp, and whatever the worker mounted) are in the root.
 */
void contain(const struct options *o) {
  int rooted = o->root != ROOT_NONE;
  cleanup_close int tree = -1;
  if (rooted) fail_on(STEP_mount, tree = copy_root(o));
  fail_on(STEP_namespaces, enter_namespaces(o));
  if (o->root == ROOT_PIVOT) fail_on(STEP_mount, attach_over_root(tree));
  if (o->root == ROOT_PIVOT) fail_on(STEP_pivot_root, pivot_into_cwd());
  if (o->root == ROOT_CHROOT) fail_on(STEP_mount, attach_on_tmpfs(tree));
  if (o->root == ROOT_CHROOT) fail_on(STEP_chroot, RS(SYS_chroot, "."));
  if (rooted) fail_on(STEP_chdir, RS(SYS_chdir, "/"));
  if (o->network_none) fail_on(STEP_network, bring_up_loopback());
  fail_on(STEP_chdir, enter_working_directory(o));
  RS(SYS_close, ROOT_FD);
}

/* PR_CAPBSET_DROP needs CAP_SETPCAP even for a capability already absent: drop only present ones. */
static int drop_bounding_set(uint64_t keep) {
  for (int cap = 0; cap < 64; cap++) {
    int present = RSI(SYS_prctl, PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0) break; /* past the kernel's last capability */
    int rc = present == 1 && !(keep & (1ULL << cap)) ? RSI(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) : 0;
    if (rc < 0) return rc;
  }
  return 0;
}

/* setuid from 0 clears the permitted and effective sets; inheritable is cleared below. */
static int change_user(const struct options *o) {
  gid_t list[64];
  size_t n = 0;
  /* By hand, not strtoul: that may write errno (raw.h). */
  for (const char *g = o->groups; g != NULL && *g != '\0' && n < 64;) {
    gid_t gid = 0;
    for (; *g >= '0' && *g <= '9'; g++) gid = gid * 10 + (gid_t)(*g - '0');
    list[n++] = gid;
    g = *g == ',' ? g + 1 : NULL;
  }
  /* The kernel's calls change this process alone (glibc's wrappers would also try every thread
   * of the process: it has none). */
  int rc = RSI(SYS_setgroups, n, list);
  if (rc == 0) rc = RSI(SYS_setgid, o->gid);
  return rc < 0 ? rc : RSI(SYS_setuid, o->uid);
}

static int limit_capabilities(uint64_t keep) {
  struct cap_header_ header = {.version = LINUX_CAPABILITY_VERSION_3_, .pid = 0};
  struct cap_data_ data[2];
  int rc = RSI(SYS_capget, &header, data);
  if (rc < 0) return rc;
  uint64_t permitted = ((uint64_t)data[1].permitted << 32 | data[0].permitted) & keep;
  for (int i = 0; i < 2; i++) {
    data[i].permitted = data[i].effective = (uint32_t)(permitted >> (32 * i));
    data[i].inheritable = 0;
  }
  return RSI(SYS_capset, &header, data);
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
  long rc = RS(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, NULL);
  return rc >= 0 || rc == -ENOSYS || rc == -EPERM ? 0 : (int)rc;
}

/* Kernels before 4.3 have no ambient set: nothing to clear there. */
static int clear_ambient(void) {
  int rc = RSI(SYS_prctl, PR_CAP_AMBIENT_, PR_CAP_AMBIENT_CLEAR_ALL_, 0, 0, 0);
  return rc == -EINVAL ? 0 : rc;
}

/* Exec ARGV[0] as the action's PATH finds it inside the (already entered) root; if it returns,
 * the error (positive). */
static int exec_in_path(char **argv, char **envp) {
  if (strchr(argv[0], '/') != NULL) return raw_error(RS(SYS_execve, argv[0], argv, envp));
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
      int error = raw_error(RS(SYS_execve, candidate, argv, envp));
      if (error == EACCES) saved = EACCES;
      else if (error != ENOENT && error != ENOTDIR) return error;
    }
    if (*end == '\0') break;
    p = end;
  }
  return saved;
}

/*
 * Where its init shares the server's memory (and so stays out of the action's cgroups: server.c),
 * the action, born into its v2 cgroup (or, where clone3 is refused, joining it here), enters the
 * others itself: the v1 trees (each cgroup.procs
 * open for writing), then its oom_score_adj, written while it still has every capability so that
 * it is also its floor (the kernel keeps a vfork child's value its own, where the init's would
 * have been the server's too), then a cgroup namespace rooted there.
 */
static void enter_own_cgroups(const struct options *o) {
  if (o->cgroup >= 0 && !o->born_into_cgroup) fail_on(STEP_cgroup, join_cgroup_dir(o->cgroup));
  for (int i = 0; i < o->joins; i++) {
    fail_on(STEP_cgroup, join_cgroup_file(o->join[i]));
    RS(SYS_close, o->join[i]);
  }
  if (o->cgroup >= 0) RS(SYS_close, o->cgroup);
  if (o->oom_score_adj != OOM_SCORE_KEEP) fail_on(STEP_limits, set_oom_score_adj(o->proc_fd, "self/oom_score_adj", o->oom_score_adj));
  if (o->proc_fd >= 0) RS(SYS_close, o->proc_fd);
  fail_on(STEP_namespaces, RS(SYS_unshare, CLONE_NEWCGROUP));
}

/*
 * The action itself, in order: bounding set, user, session keyring, capability sets, ambient,
 * NO_NEW_PRIVS, per-user limits, only fds 0-2, default signals, the seccomp filter (and its
 * listener to the init's broker), exec. Never returns.
 */
void start_action(const struct options *o, char **envp) {
  if (o->shares_memory) enter_own_cgroups(o);
  uint64_t keep = o->uid >= 0 ? 0 : o->caps;
  fail_on(STEP_capabilities, drop_bounding_set(keep));
  if (o->gid >= 0) fail_on(STEP_credentials, change_user(o));
  fail_on(STEP_keyring, join_own_keyring());
  fail_on(STEP_capabilities, limit_capabilities(keep));
  fail_on(STEP_capabilities, clear_ambient());
  /* A setuid or file-capability binary in the input root gains nothing, whoever runs it. */
  fail_on(STEP_no_new_privs, RS(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  /* Bounded message queues (and, by its filter below, its own inotify instances): nothing it
   * charges per user starves the host. */
  fail_on(STEP_limits, limit_per_user());
  if (o->nice != NICE_KEEP) fail_on(STEP_limits, floor_nice(o->nice));
  /* A change of user cleared the parent-death signal: set it again. */
  RS(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  /* Whatever the caller inherited without CLOEXEC ends here (the caller's /proc with it); fd 5
   * (CLOEXEC) stays until exec so that a failed exec can still be reported. */
  fail_on(STEP_fds, RS(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC_));
  default_signals();
  /* Last: nothing of ours runs under it but the listener's send (sendmsg, which it allows), the
   * exec (and, should it fail, the report). With a PID namespace, it hands inotify to the broker. */
  int listener = -1;
  fail_on(STEP_seccomp, load_filter(o, broker_wanted(o) ? &listener : NULL));
  fail_on(STEP_limits, broker_send(o, listener));
  fail(STEP_exec, exec_in_path(o->argv, envp));
}
