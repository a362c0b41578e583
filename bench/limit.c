/*
 * The limit: the kernel work of one contained action as mountat's default runner does it, and
 * nothing else, so that the runner's cost per action can be read against it (bench/runner.mjs,
 * "÷ limit"). No records, no mountpoints made and removed, no RPC, no event loop: only what the
 * kernel must do for the same isolation.
 *
 * Per action, in this order:
 *   the server: clone(CLONE_VM | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
 *     CLONE_NEWCGROUP) of the init, on a stack of the request's own (no copy of the server: it
 *     shares the server's memory, so it makes system calls only through rsys(), the starter's
 *     (native/starter/raw.h), which never touch errno, the one variable it would share); with
 *     --cgroup, the action's cgroups made first (mkdir DIR/N in each tree, pids.max 4096 where
 *     the tree has it) and the cgroup
 *     namespace made by the init once it has joined them, as mountat's starter joins at its gate;
 *   the init, pid 1: PR_SET_PDEATHSIG, PR_SET_DUMPABLE 0, /dev/null on 0-2 and every other fd
 *     closed; with --cgroup, "0" written to each cgroup.procs, oom_score_adj 1000, unshare of the
 *     cgroup namespace; every mount made private (MS_REC | MS_PRIVATE on /); the root bound:
 *     open_tree(ROOT, OPEN_TREE_CLONE | AT_RECURSIVE), mount_setattr nosuid and private, moved
 *     over "/"; onto its proc, sys and tmp (each found with openat2 RESOLVE_IN_ROOT |
 *     NO_SYMLINKS | NO_MAGICLINKS | NO_XDEV; made once with mkdirat where missing, and left):
 *       proc: fsopen, fsconfig source, CMD_CREATE, fsmount nosuid,nodev,noexec (the init is in
 *         the new PID namespace: proc shows it), move_mount, then src/mounts/covers.ts's proc
 *         covers as src/mounts/cover.ts makes them (each name found beneath the mount with
 *         openat2 RESOLVE_BENEATH | NO_SYMLINKS | NO_MAGICLINKS | NO_XDEV, absent ones skipped;
 *         read-only: open_tree of itself + mount_setattr ro,nosuid,nodev,noexec; a masked file:
 *         open_tree of /dev/null + mount_setattr ro,nosuid,noexec; a masked directory: a tmpfs
 *         fsmount ro,nosuid,nodev,noexec; then move_mount onto the name);
 *       sys: a sysfs the same way, read-only, with its covers (firmware, devices/virtual/powercap);
 *       tmp: the request's temporary directory bound (open_tree, mount_setattr nosuid,nodev,
 *         relatime, private, move_mount), as the runner binds it; a tmpfs (mode 1777, size 512m,
 *         nosuid,nodev) where the request names none;
 *     fchdir to the root, pivot_root(".", "."), the old root detached (umount2 MNT_DETACH),
 *     chdir "/"; clone(CLONE_VM | CLONE_VFORK) of the action (pid 2); wait4 until it is reaped;
 *   the action: PR_SET_PDEATHSIG; the bounding set dropped to DEFAULT_ACTION_CAPABILITIES of
 *     src/sandbox/capabilities.ts (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
 *     SETPCAP), permitted and effective the same, inheritable and ambient cleared; with --seccomp,
 *     a new session keyring; PR_SET_NO_NEW_PRIVS; with --seccomp, RLIMIT_MSGQUEUE lowered to
 *     409600; fds above 2 closed (close_range); an empty signal mask; with --seccomp, a seccomp
 *     filter loaded (a trivial one: the architecture checked, everything else allowed; mountat's
 *     is libseccomp's, longer, with a listener for its inotify broker, which this does not have);
 *     execve of /bin/true (busybox's, in a busybox root) with PATH=/bin;
 *   teardown: the init's exit ends the PID namespace and with it the mount namespace, the only
 *     place any of these mounts ever were (nothing is mounted in the server's namespace); with
 *     --cgroup, the server removes the action's cgroups (rmdir, again on EBUSY) before answering.
 * --seccomp and --cgroup are what issues 19 and 20 added to every action (a keyring, the per-user
 * limit, the filter; a cgroup per action and oom_score_adj); without them, the containment as it
 * was before those issues. --fork-init clones the init without CLONE_VM, a copy of the server as
 * mountat's starter server forks it where it cannot share its memory (a runner without
 * CAP_SYS_PTRACE: native/starter/server.c): the figure says what that copy costs an action.
 *
 * usage: limit [--seccomp] [--fork-init] [--cgroup DIR]... --serve
 *          requests on stdin, one line each: "ID ROOT [TMP]" (no spaces in them); one answer line
 *          each on stdout, in the order the actions end: "ID exit N", "ID signal N" or
 *          "ID failed STEP: REASON". Up to 64 actions at once: each request is started as soon as
 *          it is read (one clone of the init per request, from this one process; no pool, no
 *          fork), and answered as its init is reaped (SIGCHLD on a signalfd). Exits 0 at the end
 *          of its input, once every action has been answered.
 *        limit [--seccomp] [--fork-init] [--cgroup DIR]... ROOT [TMP]
 *          one action; exit 0 if it exited 0, else 1 with the reason on stderr.
 * Each --cgroup DIR is a directory of one cgroup tree, made and removed by the caller; the actions'
 * cgroups are made below it (DIR/PID-1, DIR/PID-2, ...: PID its own, so that processes spawned at
 * once never collide). As root, for x86_64 and aarch64, kernel 6.8+.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The kernel ABI the libc headers may lack: the starter's (one copy), and the covers. */
#include "../native/starter/kernel.h"
#include "../native/starter/raw.h"
#include "covers.h"

#define OPEN_TREE_CLOEXEC_ O_CLOEXEC
#define MOVE_MOUNT_T_EMPTY_PATH_ 0x40
#define ATTR_RDONLY 0x1
#define ATTR_NOSUID 0x2
#define ATTR_NODEV 0x4
#define ATTR_NOEXEC 0x8
#define ATTR__ATIME 0x70
#define RESOLVE_BENEATH_ 0x08
#define RESOLVE_NO_XDEV_ 0x01

/*
 * System calls through rsys() (RS), the starter's own (native/starter/raw.h): it returns -errno
 * and writes nothing but what the kernel writes. The init and the action share this process's
 * memory (CLONE_VM), its thread-local errno included, while the server and other inits run:
 * glibc's wrappers would race on it.
 */

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#else
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#endif

enum { MAX_SLOTS = 64, MAX_CGROUPS = 8, STACK = 256 * 1024, LINE = 3 * 4096 + 64 };
/* What an action keeps: DEFAULT_ACTION_CAPABILITIES (CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4,
 * KILL 5, SETGID 6, SETUID 7, SETPCAP 8). */
static const uint64_t KEEP = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 7 | 1 << 8;

#define NCOVERS(list) (int)(sizeof list / sizeof list[0])

/* One action in flight. The init and the action write `step`, `err` and `status` here (shared memory). */
struct slot {
  int busy;
  pid_t init;
  char id[64];
  char root[4096], tmp[4096];
  char cgroup[MAX_CGROUPS][4200];
  char *init_stack, *action_stack;
  volatile const char *step;
  volatile int err;
  volatile int status;
};

static struct slot slots[MAX_SLOTS];
static int opt_seccomp = 0;
/* --fork-init: the init forked (no CLONE_VM) as mountat's starter server forks it: what that costs. */
static int opt_fork_init = 0;
static const char *cgroup_dirs[MAX_CGROUPS];
static int ncgroups = 0;
static int devnull = -1;
static unsigned long next_cgroup = 0;

/* ---- the init and the action: rsys() only ---- */

__attribute__((noreturn)) static void fail(struct slot *s, const char *step, long r) {
  s->step = step;
  s->err = (int)-r;
  RS(SYS_exit_group, 127);
  __builtin_unreachable();
}

#define TRY(s, step, call)                                                                                                                 \
  ({                                                                                                                                       \
    long r_ = (call);                                                                                                                      \
    if (r_ < 0) fail(s, step, r_);                                                                                                         \
    r_;                                                                                                                                    \
  })

static long write_file(const char *path, const char *text, size_t len) {
  long fd = RS(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fd;
  long r = RS(SYS_write, fd, text, len);
  RS(SYS_close, fd);
  return r < 0 ? r : 0;
}

/* The mountpoint `name` beneath the root, as the engine resolves it; made once where missing. */
static long target_of(int root, const char *name) {
  struct open_how_ how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_IN_ROOT_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_ | RESOLVE_NO_XDEV_};
  long fd = RS(SYS_openat2, root, name, &how, sizeof how);
  if (fd != -ENOENT) return fd;
  long r = RS(SYS_mkdirat, root, name, 0755);
  if (r < 0 && r != -EEXIST) return r;
  return RS(SYS_openat2, root, name, &how, sizeof how);
}

static long set_attributes(long tree, uint64_t set, uint64_t clear) {
  struct mount_attr_ attr = {.attr_set = set, .attr_clr = clear, .propagation = MS_PRIVATE};
  return RS(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr);
}

static void cover(struct slot *s, long mount, const struct cover *c) {
  struct open_how_ how = {.flags = O_PATH | O_CLOEXEC | (c->directory ? O_DIRECTORY : 0),
                          .resolve = RESOLVE_BENEATH_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_ | RESOLVE_NO_XDEV_};
  long at = RS(SYS_openat2, mount, c->name, &how, sizeof how);
  if (at == -ENOENT) return;
  TRY(s, "cover", at);
  long made;
  if (c->readonly) {
    made = TRY(s, "cover", RS(SYS_open_tree, at, "", OPEN_TREE_CLONE_ | OPEN_TREE_CLOEXEC_ | AT_EMPTY_PATH));
    TRY(s, "cover", set_attributes(made, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, 0));
  } else if (!c->directory) {
    made = TRY(s, "cover", RS(SYS_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE_ | OPEN_TREE_CLOEXEC_));
    TRY(s, "cover", set_attributes(made, ATTR_RDONLY | ATTR_NOSUID | ATTR_NOEXEC, 0));
  } else {
    long fs = TRY(s, "cover", RS(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC_));
    TRY(s, "cover", RS(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, 0, 0, 0));
    made = TRY(s, "cover", RS(SYS_fsmount, fs, FSMOUNT_CLOEXEC_, ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC));
    RS(SYS_close, fs);
  }
  TRY(s, "cover", RS(SYS_move_mount, made, "", at, "", MOVE_MOUNT_F_EMPTY_PATH_ | MOVE_MOUNT_T_EMPTY_PATH_));
  RS(SYS_close, made);
  RS(SYS_close, at);
}

/* A new proc or sysfs (or tmpfs) on `name` beneath the root, and its covers. */
static void mount_new(struct slot *s, int root, const char *type, const char *name, uint64_t attrs, const struct cover *covers, int n) {
  long fs = TRY(s, name, RS(SYS_fsopen, type, FSOPEN_CLOEXEC_));
  TRY(s, name, RS(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "source", type, 0));
  if (covers == NULL) {
    TRY(s, name, RS(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "mode", "1777", 0));
    TRY(s, name, RS(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "size", "512m", 0));
  }
  TRY(s, name, RS(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, 0, 0, 0));
  long mount = TRY(s, name, RS(SYS_fsmount, fs, FSMOUNT_CLOEXEC_, attrs));
  RS(SYS_close, fs);
  long at = TRY(s, name, target_of(root, name));
  TRY(s, name, RS(SYS_move_mount, mount, "", at, "", MOVE_MOUNT_F_EMPTY_PATH_ | MOVE_MOUNT_T_EMPTY_PATH_));
  RS(SYS_close, at);
  for (int i = 0; i < n; i++) cover(s, mount, &covers[i]);
  RS(SYS_close, mount);
}

static void bind_tmp(struct slot *s, int root) {
  long tree = TRY(s, "tmp", RS(SYS_open_tree, AT_FDCWD, s->tmp, OPEN_TREE_CLONE_ | OPEN_TREE_CLOEXEC_));
  TRY(s, "tmp", set_attributes(tree, ATTR_NOSUID | ATTR_NODEV, ATTR__ATIME));
  long at = TRY(s, "tmp", target_of(root, "tmp"));
  TRY(s, "tmp", RS(SYS_move_mount, tree, "", at, "", MOVE_MOUNT_F_EMPTY_PATH_ | MOVE_MOUNT_T_EMPTY_PATH_));
  RS(SYS_close, at);
  RS(SYS_close, tree);
}

static int action_main(void *arg) {
  struct slot *s = arg;
  RS(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  for (int cap = 0; cap < 64; cap++) {
    long present = RS(SYS_prctl, PR_CAPBSET_READ, cap);
    if (present < 0) break; /* past the kernel's last capability */
    if (present == 1 && !(KEEP & (1ULL << cap))) TRY(s, "capabilities", RS(SYS_prctl, PR_CAPBSET_DROP, cap));
  }
  if (opt_seccomp) TRY(s, "keyring", RS(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING_, 0));
  struct cap_header_ header = {.version = 0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, .pid = 0};
  struct cap_data_ data[2];
  TRY(s, "capabilities", RS(SYS_capget, &header, data));
  uint64_t permitted = ((uint64_t)data[1].permitted << 32 | data[0].permitted) & KEEP;
  for (int i = 0; i < 2; i++) {
    data[i].permitted = data[i].effective = (uint32_t)(permitted >> (32 * i));
    data[i].inheritable = 0;
  }
  TRY(s, "capabilities", RS(SYS_capset, &header, data));
  TRY(s, "capabilities", RS(SYS_prctl, PR_CAP_AMBIENT_, PR_CAP_AMBIENT_CLEAR_ALL_, 0, 0, 0));
  TRY(s, "no_new_privs", RS(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  if (opt_seccomp) {
    struct rlimit limit;
    TRY(s, "limits", RS(SYS_prlimit64, 0, RLIMIT_MSGQUEUE, 0, &limit));
    if (limit.rlim_max > 409600) limit.rlim_max = 409600;
    if (limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
    TRY(s, "limits", RS(SYS_prlimit64, 0, RLIMIT_MSGQUEUE, &limit, 0));
  }
  TRY(s, "fds", RS(SYS_close_range, 3, ~0U, 0));
  uint64_t none = 0;
  TRY(s, "signals", RS(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof none));
  if (opt_seccomp) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    TRY(s, "seccomp", RS(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program));
  }
  static char *const argv[] = {"/bin/true", NULL};
  static char *const envp[] = {"PATH=/bin", NULL};
  fail(s, "exec", RS(SYS_execve, argv[0], argv, envp));
}

static int init_main(void *arg) {
  struct slot *s = arg;
  RS(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  TRY(s, "fds", RS(SYS_prctl, PR_SET_DUMPABLE, 0));
  for (int fd = 0; fd < 3; fd++) TRY(s, "fds", RS(SYS_dup3, devnull, fd, 0));
  TRY(s, "fds", RS(SYS_close_range, 3, ~0U, 0));
  if (ncgroups > 0) {
    for (int i = 0; i < ncgroups; i++) {
      char path[4300];
      /* The path was made by the server; only its copy's suffix is added here (no libc: plain loop). */
      size_t n = 0;
      for (const char *p = s->cgroup[i]; *p; p++) path[n++] = *p;
      for (const char *p = "/cgroup.procs"; *p; p++) path[n++] = *p;
      path[n] = '\0';
      TRY(s, "cgroup", write_file(path, "0", 1));
    }
    TRY(s, "cgroup", write_file("/proc/self/oom_score_adj", "1000", 4));
    TRY(s, "namespaces", RS(SYS_unshare, CLONE_NEWCGROUP));
  }
  TRY(s, "private", RS(SYS_mount, 0, "/", 0, MS_REC | MS_PRIVATE, 0));
  long root = TRY(s, "root", RS(SYS_open_tree, AT_FDCWD, s->root, OPEN_TREE_CLONE_ | AT_RECURSIVE_ | OPEN_TREE_CLOEXEC_));
  struct mount_attr_ attr = {.attr_set = ATTR_NOSUID, .propagation = MS_PRIVATE};
  TRY(s, "root", RS(SYS_mount_setattr, root, "", AT_EMPTY_PATH | AT_RECURSIVE_, &attr, sizeof attr));
  TRY(s, "root", RS(SYS_move_mount, root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_));
  mount_new(s, (int)root, "proc", "proc", ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, proc_covers, NCOVERS(proc_covers));
  mount_new(s, (int)root, "sysfs", "sys", ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, sysfs_covers, NCOVERS(sysfs_covers));
  if (s->tmp[0] != '\0') bind_tmp(s, (int)root);
  else mount_new(s, (int)root, "tmpfs", "tmp", ATTR_NOSUID | ATTR_NODEV, NULL, 0);
  TRY(s, "pivot_root", RS(SYS_fchdir, root));
  RS(SYS_close, root);
  TRY(s, "pivot_root", RS(SYS_pivot_root, ".", "."));
  TRY(s, "pivot_root", RS(SYS_umount2, ".", MNT_DETACH));
  TRY(s, "pivot_root", RS(SYS_chdir, "/"));
  /* glibc's clone: on success it touches nothing shared, and the init is suspended until the
   * action has exec'd (CLONE_VFORK), as posix_spawn does it. */
  pid_t action = clone(action_main, s->action_stack + STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, s);
  if (action < 0) fail(s, "clone", -EAGAIN);
  for (;;) {
    int status = 0;
    long got = RS(SYS_wait4, -1, &status, 0, 0);
    if (got == action) {
      s->status = status;
      break;
    }
    if (got < 0 && got != -EINTR) fail(s, "wait", got);
  }
  RS(SYS_exit_group, 0);
  return 0;
}

/* ---- the server: ordinary libc ---- */

static int make_cgroups(struct slot *s) {
  unsigned long n = ++next_cgroup;
  for (int i = 0; i < ncgroups; i++) {
    snprintf(s->cgroup[i], sizeof s->cgroup[i], "%s/%d-%lu", cgroup_dirs[i], (int)getpid(), n);
    if (mkdir(s->cgroup[i], 0755) != 0) return -1;
    char path[4300];
    snprintf(path, sizeof path, "%s/pids.max", s->cgroup[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) return -1;
    if (fd >= 0) {
      ssize_t w = write(fd, "4096", 4);
      close(fd);
      if (w != 4) return -1;
    }
  }
  return 0;
}

static int remove_cgroups(struct slot *s) {
  for (int i = 0; i < ncgroups; i++) {
    for (int attempt = 0;; attempt++) {
      if (rmdir(s->cgroup[i]) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || attempt > 20000) return -1;
      struct timespec wait = {0, 50000};
      nanosleep(&wait, NULL);
    }
  }
  return 0;
}

/* Starts the action of slot s; on failure, says why in s->step and s->err and returns -1. */
static int start(struct slot *s) {
  s->step = NULL;
  s->err = 0;
  s->status = 0;
  if (!s->init_stack) {
    s->init_stack = mmap(NULL, 2 * STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s->init_stack == MAP_FAILED) {
      s->init_stack = NULL;
      s->step = "stack";
      s->err = errno;
      return -1;
    }
    s->action_stack = s->init_stack + STACK;
  }
  if (ncgroups > 0 && make_cgroups(s) != 0) {
    s->step = "cgroup";
    s->err = errno;
    remove_cgroups(s);
    return -1;
  }
  int flags = (opt_fork_init ? 0 : CLONE_VM) | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
              (ncgroups > 0 ? 0 : CLONE_NEWCGROUP) | SIGCHLD;
  s->init = clone(init_main, s->init_stack + STACK, flags, s);
  if (s->init < 0) {
    s->step = "clone";
    s->err = errno;
    if (ncgroups > 0) remove_cgroups(s);
    return -1;
  }
  return 0;
}

/* The answer for a finished slot: "exit N", "signal N" or "failed STEP: REASON". */
static void describe(struct slot *s, int init_status, char *out, size_t size) {
  if (s->step != NULL) snprintf(out, size, "failed %s: %s", (const char *)s->step, strerror(s->err));
  else if (!WIFEXITED(init_status) || WEXITSTATUS(init_status) != 0) snprintf(out, size, "failed init: wait status %d", init_status);
  else if (WIFEXITED(s->status)) snprintf(out, size, "exit %d", WEXITSTATUS(s->status));
  else snprintf(out, size, "signal %d", WTERMSIG(s->status));
}

static void finish(struct slot *s, int init_status) {
  char what[256], line[400];
  describe(s, init_status, what, sizeof what);
  if (ncgroups > 0 && remove_cgroups(s) != 0 && s->step == NULL) snprintf(what, sizeof what, "failed rmdir cgroup: %s", strerror(errno));
  int n = snprintf(line, sizeof line, "%s %s\n", s->id, what);
  if (write(1, line, (size_t)n) != n) exit(1);
  s->busy = 0;
}

/* "ID ROOT [TMP]" into a free slot, started; answered at once if it could not start. */
static void request(char *text) {
  struct slot *s = NULL;
  for (int i = 0; i < MAX_SLOTS && !s; i++)
    if (!slots[i].busy) s = &slots[i];
  char *save = NULL, *id = strtok_r(text, " ", &save), *root = strtok_r(NULL, " ", &save), *tmp = strtok_r(NULL, " ", &save);
  if (!s || !id || !root || strlen(id) >= sizeof s->id || strlen(root) >= sizeof s->root || (tmp && strlen(tmp) >= sizeof s->tmp)) {
    dprintf(1, "%s failed request: not \"ID ROOT [TMP]\", or too long, or over %d at once\n", id ? id : "?", MAX_SLOTS);
    return;
  }
  s->busy = 1;
  strcpy(s->id, id);
  strcpy(s->root, root);
  strcpy(s->tmp, tmp ? tmp : "");
  if (start(s) != 0) finish(s, 0);
}

static int busy_count(void) {
  int n = 0;
  for (int i = 0; i < MAX_SLOTS; i++) n += slots[i].busy;
  return n;
}

static void reap(void) {
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (int i = 0; i < MAX_SLOTS; i++)
      if (slots[i].busy && slots[i].init == pid) finish(&slots[i], status);
  }
}

static char buffer[LINE * 4];
static size_t have = 0;

/* Starts the buffered requests while a slot is free. */
static void drain(void) {
  char *line;
  while (busy_count() < MAX_SLOTS && (line = memchr(buffer, '\n', have)) != NULL) {
    *line = '\0';
    request(buffer);
    size_t used = (size_t)(line + 1 - buffer);
    memmove(buffer, line + 1, have - used);
    have -= used;
  }
}

static int serve(void) {
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &child, NULL) != 0) return 1;
  int sfd = signalfd(-1, &child, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 1;
  int open_input = 1;
  while (open_input || busy_count() > 0 || memchr(buffer, '\n', have) != NULL) {
    struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    /* Input is read only while a slot is free and no whole request waits. */
    nfds_t n = open_input && busy_count() < MAX_SLOTS && memchr(buffer, '\n', have) == NULL ? 2 : 1;
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo info;
      while (read(sfd, &info, sizeof info) == sizeof info) {
      }
      reap();
    }
    if (n == 2 && fds[1].revents & (POLLIN | POLLHUP)) {
      ssize_t got = read(0, buffer + have, sizeof buffer - have);
      if (got <= 0) open_input = 0;
      else have += (size_t)got;
      if (have == sizeof buffer && memchr(buffer, '\n', have) == NULL) return 1; /* a line longer than any request */
    }
    drain();
  }
  return 0;
}

static int usage(const char *why) {
  fprintf(stderr, "limit: %s\nusage: limit [--seccomp] [--fork-init] [--cgroup DIR]... --serve\n", why);
  fprintf(stderr, "       limit [--seccomp] [--fork-init] [--cgroup DIR]... ROOT [TMP]\n");
  return 2;
}

int main(int argc, char **argv) {
  int serving = 0, i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--serve") == 0) serving = 1;
    else if (strcmp(argv[i], "--seccomp") == 0) opt_seccomp = 1;
    else if (strcmp(argv[i], "--fork-init") == 0) opt_fork_init = 1;
    else if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc && ncgroups < MAX_CGROUPS) cgroup_dirs[ncgroups++] = argv[++i];
    else return usage("unknown option, or --cgroup without a directory, or more than 8");
  }
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return usage("cannot open /dev/null");
  if (serving) return i == argc ? serve() : usage("--serve takes no ROOT");
  if (argc - i < 1 || argc - i > 2) return usage("name ROOT, and optionally TMP");
  struct slot *s = &slots[0];
  if (strlen(argv[i]) >= sizeof s->root || (argc - i == 2 && strlen(argv[i + 1]) >= sizeof s->tmp)) return usage("path too long");
  strcpy(s->id, "1");
  strcpy(s->root, argv[i]);
  strcpy(s->tmp, argc - i == 2 ? argv[i + 1] : "");
  int status = 0;
  if (start(s) == 0) {
    while (waitpid(s->init, &status, 0) < 0 && errno == EINTR) {
    }
  }
  char what[256];
  describe(s, status, what, sizeof what);
  if (ncgroups > 0 && remove_cgroups(s) != 0) return fprintf(stderr, "limit: rmdir of a cgroup: %s\n", strerror(errno)), 1;
  if (strcmp(what, "exit 0") == 0) return 0;
  fprintf(stderr, "limit: %s\n", what);
  return 1;
}
