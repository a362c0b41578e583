/*
 * mountat-action: starts one build action, contained, for the runner and `mountat exec`.
 *
 * Why a separate static program rather than Node's child_process: Node can neither start a
 * child in new namespaces, nor pivot it into a root, nor drop its capabilities, nor report its
 * rusage (wait4); and a static binary needs no library in the input root. The caller keeps all
 * policy (which namespaces, which capabilities, which user); this performs the steps in order,
 * each checked, each failure fatal and named, nothing of the starter's privilege left for the
 * action. The order follows bubblewrap's main() and runc's standard_init_linux.go: namespaces,
 * then the root (pivot_root, the old root unmounted), then credentials and capabilities, then
 * NO_NEW_PRIVS, then only fds 0-2, then exec.
 *
 * usage: mountat-action [--pidns] [--root pivot|chroot|none] [--cwd PATH] [--network host|none] [--caps HEX]
 *                       [--uid N --gid N [--groups G,G,...]] [--forward-signals] -- ARGV...
 *        mountat-action --serve     (the runner's: fork a starter per request, see serve() below)
 * fds:   0, 1, 2 the action's stdin, stdout and stderr; 3 the input root (an O_PATH directory
 *        fd the caller resolved); 4 the gate (read end); 5 the status (write end).
 * env:   exactly the action's environment; its PATH finds ARGV[0] inside the root.
 *
 *   --pidns        a new PID namespace; its pid 1 is a small init and the action is pid 2.
 *   --root pivot   (the default) the input root becomes the root with pivot_root, the old root
 *                  detached: nothing of the caller's filesystem is left in the namespace.
 *   --root chroot  where a seccomp profile refuses pivot_root (Docker's default does): the input
 *                  root is mounted on a directory of an empty tmpfs stacked over "/", and chrooted
 *                  into. The old root stays beneath, out of reach of an action without
 *                  CAP_SYS_CHROOT and CAP_SYS_ADMIN (the caller's policy); and as its root is not
 *                  the namespace's root (the tmpfs is), the kernel refuses it a user namespace of
 *                  its own, where it would have them. (Chrooted into a root stacked directly over
 *                  "/", it would count as the namespace's root, and from a user namespace a chroot
 *                  of its own and ".." reach the old root: found by test/containment.test.ts.)
 *   --root none    stay in the caller's root (bb_runner's chrootIntoInputRoot: false); the action
 *                  still gets its own mount namespace, it just is not rooted elsewhere.
 *   --cwd PATH     the working directory, relative to the root, looked up again beneath the
 *                  new root (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS) once it is entered.
 *   --network none a network namespace with only loopback (up). Default: the caller's.
 *   --caps HEX     the capabilities a root action keeps (bounding, permitted, effective);
 *                  with --uid the action keeps none whatever this says. Default: none.
 *   --forward-signals  SIGINT, SIGTERM, SIGHUP and SIGQUIT reach the action as themselves
 *                  (`mountat exec`); without it they end the action with SIGKILL (the runner).
 *
 * Protocol on fd 5, one line each:
 *   "S <pid>"      the starter's own pid (its process group), first.
 *   "P <pid>"      the action's process exists (its pid in the caller's namespace; with --pidns,
 *                  pid 1 of the new PID namespace). It now waits on the gate, so the caller can
 *                  mount proc for that namespace and run its prestart hooks.
 *   "E <errno> <step>"  a step failed and the action did not start. <step> is one of pidns,
 *                  fork, mount, namespaces, pivot_root, chroot, network, chdir, capabilities,
 *                  credentials, no_new_privs, fds, exec, wait: the caller can tell a missing
 *                  capability (its own problem) from a command that cannot run (the request's).
 *   "X <wait status> <utime us> <stime us> <maxrss KiB> <minflt> <majflt> <nswap> <inblock>
 *      <oublock> <msgsnd> <msgrcv> <nsignals> <nvcsw> <nivcsw>"   the action ended (wait4).
 * The gate (fd 4): one byte 'G' lets the action start; anything else or EOF aborts it (exit 125).
 *
 * The end cannot be forged from inside: with --pidns, the init that waits for the action and
 * writes "X" is pid 1 of the action's namespaces, not dumpable and holding every capability the
 * action lacks, so the action can neither open /proc/1/fd/5 nor ptrace it nor signal it (pid 1
 * ignores signals from inside its namespace that it has no handler for); only it holds fd 5.
 * Without --pidns this process (outside every namespace of the action) reports the end itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { ROOT_FD = 3, GATE_FD = 4, STATUS_FD = 5 };

/* Kernel ABI the static glibc headers may not name (same values on x86_64 and aarch64). */
#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define MOUNT_ATTR_NOSUID_ 0x2
#define MS_PRIVATE_ (1 << 18)
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04
#define RESOLVE_IN_ROOT_ 0x10
#define CLOSE_RANGE_CLOEXEC_ (1U << 2)
#define LINUX_CAPABILITY_VERSION_3_ 0x20080522
#define PR_CAP_AMBIENT_ 47
#define PR_CAP_AMBIENT_CLEAR_ALL_ 4
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#define MOUNT_ATTR_NODEV_ 0x4
#define MOUNT_ATTR_NOEXEC_ 0x8

struct mount_attr_ {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
struct open_how_ {
  uint64_t flags, mode, resolve;
};
struct cap_header_ {
  uint32_t version;
  int pid;
};
struct cap_data_ {
  uint32_t effective, permitted, inheritable;
};

enum root_change { ROOT_PIVOT, ROOT_CHROOT, ROOT_NONE };

struct options {
  int pidns, network_none, forward_signals;
  enum root_change root;
  const char *cwd;
  uint64_t caps;
  long uid, gid;
  const char *groups;
  char **argv;
};

static volatile pid_t child_pid = 0;
static int forwarding = 0;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof line) return;
  /* The caller reads whole lines; a write of < PIPE_BUF bytes to a pipe is never split. */
  ssize_t ignored = write(STATUS_FD, line, (size_t)n);
  (void)ignored;
}

static void report_exit(int status, const struct rusage *ru) {
  report("X %d %lld %lld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n", status,
         (long long)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec, (long long)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
         ru->ru_maxrss, ru->ru_minflt, ru->ru_majflt, ru->ru_nswap, ru->ru_inblock, ru->ru_oublock, ru->ru_msgsnd, ru->ru_msgrcv,
         ru->ru_nsignals, ru->ru_nvcsw, ru->ru_nivcsw);
}

/* A step failed: say which (errno is still the step's), and end without starting the action. */
static void fail(const char *step) __attribute__((noreturn));
static void fail(const char *step) {
  report("E %d %s\n", errno, step);
  _exit(127);
}

static void usage(const char *why) {
  fprintf(stderr, "mountat-action: %s\n", why);
  exit(126);
}

/* SIGTERM and friends: passed on as themselves (--forward-signals), or the end of the action. */
static void on_signal(int sig) {
  if (child_pid > 0) kill(child_pid, forwarding ? sig : SIGKILL);
}

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

static void handle_signals(void) {
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) {
    if (FORWARDED[i] == SIGQUIT && !forwarding) continue;
    sigaction(FORWARDED[i], &sa, NULL);
  }
}

static void default_signals(void) {
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) signal(FORWARDED[i], SIG_DFL);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) usage(what);
  return value;
}

static void parse(int argc, char **argv, struct options *o) {
  *o = (struct options){.root = ROOT_PIVOT, .cwd = ".", .uid = -1, .gid = -1};
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "--pidns") == 0) {
      o->pidns = 1;
    } else if (strcmp(a, "--root") == 0 && i + 1 < argc) {
      const char *how = argv[++i];
      if (strcmp(how, "pivot") == 0) o->root = ROOT_PIVOT;
      else if (strcmp(how, "chroot") == 0) o->root = ROOT_CHROOT;
      else if (strcmp(how, "none") == 0) o->root = ROOT_NONE;
      else usage("--root is pivot, chroot or none");
    } else if (strcmp(a, "--forward-signals") == 0) {
      o->forward_signals = 1;
    } else if (strcmp(a, "--cwd") == 0 && i + 1 < argc) {
      o->cwd = argv[++i];
      if (o->cwd[0] == '\0' || o->cwd[0] == '/') usage("--cwd must be relative to the root");
    } else if (strcmp(a, "--network") == 0 && i + 1 < argc) {
      const char *mode = argv[++i];
      if (strcmp(mode, "none") == 0) o->network_none = 1;
      else if (strcmp(mode, "host") != 0) usage("--network is host or none");
    } else if (strcmp(a, "--caps") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      o->caps = strtoull(argv[++i], &end, 16);
      if (errno != 0 || *end != '\0') usage("bad --caps");
    } else if (strcmp(a, "--uid") == 0 && i + 1 < argc) {
      o->uid = number(argv[++i], "bad --uid");
    } else if (strcmp(a, "--gid") == 0 && i + 1 < argc) {
      o->gid = number(argv[++i], "bad --gid");
    } else if (strcmp(a, "--groups") == 0 && i + 1 < argc) {
      o->groups = argv[++i];
    } else {
      usage("unknown option");
    }
  }
  if (i >= argc) usage("no command after --");
  if ((o->uid < 0) != (o->gid < 0)) usage("--uid and --gid go together");
  o->argv = &argv[i];
}

/*
 * The action's own namespaces, rooted at the input root. Called after the gate opened, so the
 * caller's prestart mounts (proc, sys, tmp, and whatever the worker mounted) are in the root.
 *
 * 1. A recursive detached copy of the root, taken while still in the caller's namespace (a copy
 *    can only be taken of a mount in one's own namespace), made private so that nothing mounted
 *    or unmounted in it can propagate to the caller's mounts, and nosuid.
 * 2. New mount, IPC and UTS (and network) namespaces; every mount of the copied namespace made
 *    private first, or unmounting the old root below would propagate to the caller's peers.
 * 3. The copy attached over "/", entered by its fd, pivot_root(".", ".") and the old root (now
 *    stacked on top) detached: nothing of the caller's filesystem is left in the namespace, so
 *    neither `..`, nor a chroot, nor a user namespace of the action's can reach it (a chroot
 *    would leave the old root under the new one). With --root chroot, chroot(".") instead.
 */
static void isolate(const struct options *o) {
  int tree = -1;
  int rooted = o->root != ROOT_NONE;
  if (rooted) {
    tree = (int)syscall(SYS_open_tree, ROOT_FD, "", OPEN_TREE_CLONE_ | AT_RECURSIVE_ | AT_EMPTY_PATH | O_CLOEXEC);
    if (tree < 0) fail("mount");
    struct mount_attr_ attr = {.attr_set = MOUNT_ATTR_NOSUID_, .propagation = MS_PRIVATE_};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE_, &attr, sizeof attr) != 0) fail("mount");
  }
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (o->network_none ? CLONE_NEWNET : 0);
  if (unshare(flags) != 0) fail("namespaces");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("namespaces");
  if (o->root == ROOT_PIVOT) {
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_) != 0) fail("mount");
    if (fchdir(tree) != 0) fail("mount");
    if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root");
    /* pivot_root(".", ".") stacks the old root on the new one at "/": "." is now the old root. */
    if (umount2(".", MNT_DETACH) != 0) fail("pivot_root");
  } else if (o->root == ROOT_CHROOT) {
    /* An empty tmpfs over "/", the root on its directory "root", reached only through fds. */
    int fs = (int)syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
    if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "mode", "0755", 0) != 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) != 0)
      fail("mount");
    int base = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NODEV_ | MOUNT_ATTR_NOEXEC_);
    if (base < 0 || syscall(SYS_move_mount, base, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH_) != 0) fail("mount");
    if (mkdirat(base, "root", 0755) != 0) fail("mount");
    if (syscall(SYS_move_mount, tree, "", base, "root", MOVE_MOUNT_F_EMPTY_PATH_) != 0) fail("mount");
    close(base);
    close(fs);
    if (fchdir(tree) != 0) fail("mount");
    if (chroot(".") != 0) fail("chroot");
  }
  if (rooted) {
    if (chdir("/") != 0) fail("chdir");
    close(tree);
  }
  if (o->network_none) {
    /* A new network namespace has only lo, and down: bring it up, as bubblewrap does. */
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("network");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("network");
    close(s);
  }
  /* The working directory, beneath the root as the action now sees it (after a pivot "/" is the
   * root; without one the caller's root fd is). No symlink followed, `..` cannot leave. */
  struct open_how_ how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_};
  int base = rooted ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : ROOT_FD;
  int cwd = base < 0 ? -1 : (int)syscall(SYS_openat2, base, o->cwd, &how, sizeof how);
  if (cwd < 0 || fchdir(cwd) != 0) fail("chdir");
  close(cwd);
  if (base != ROOT_FD) close(base);
  close(ROOT_FD);
}

/* What the action keeps, in order: bounding set, user, capability sets, ambient, NO_NEW_PRIVS. */
static void drop_privileges(const struct options *o) {
  uint64_t keep = o->uid >= 0 ? 0 : o->caps;
  /* PR_CAPBSET_DROP needs CAP_SETPCAP even for a capability already absent: drop only present ones. */
  for (int cap = 0; cap < 64; cap++) {
    int present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0) break; /* past the kernel's last capability */
    if (present == 1 && !(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) fail("capabilities");
  }
  if (o->gid >= 0) {
    gid_t list[64];
    size_t n = 0;
    for (const char *g = o->groups; g != NULL && *g != '\0' && n < 64;) {
      char *end;
      list[n++] = (gid_t)strtoul(g, &end, 10);
      g = *end == ',' ? end + 1 : NULL;
    }
    /* setuid from 0 clears the permitted and effective sets; inheritable is cleared below. */
    if (setgroups(n, list) != 0 || setgid((gid_t)o->gid) != 0 || setuid((uid_t)o->uid) != 0) fail("credentials");
  }
  struct cap_header_ header = {.version = LINUX_CAPABILITY_VERSION_3_, .pid = 0};
  struct cap_data_ data[2];
  if (syscall(SYS_capget, &header, data) != 0) fail("capabilities");
  uint64_t permitted = ((uint64_t)data[1].permitted << 32 | data[0].permitted) & keep;
  for (int i = 0; i < 2; i++) {
    data[i].permitted = data[i].effective = (uint32_t)(permitted >> (32 * i));
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &header, data) != 0) fail("capabilities");
  /* Kernels before 4.3 have no ambient set: nothing to clear there. */
  if (prctl(PR_CAP_AMBIENT_, PR_CAP_AMBIENT_CLEAR_ALL_, 0, 0, 0) != 0 && errno != EINVAL) fail("capabilities");
  /* A setuid or file-capability binary in the input root gains nothing, whoever runs it. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs");
  /* A change of user cleared the parent-death signal: set it again. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
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

/* The action itself: its privileges, only fds 0-2, default signals, exec. Never returns. */
static void start_action(const struct options *o, char **envp) __attribute__((noreturn));
static void start_action(const struct options *o, char **envp) {
  drop_privileges(o);
  /* Whatever the caller inherited without CLOEXEC ends here; fd 5 (CLOEXEC) stays until exec so
   * that a failed exec can still be reported. */
  if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC_) != 0) fail("fds");
  default_signals();
  errno = exec_in_path(o->argv, envp);
  fail("exec");
}

/* pid 1 of the action's PID namespace: start the action as pid 2, reap everything, report its end. */
static void run_init(const struct options *o, char **envp) __attribute__((noreturn));
static void run_init(const struct options *o, char **envp) {
  /* Not dumpable: the action, even as root with its capabilities, cannot open /proc/1/fd/5,
   * read /proc/1/environ or ptrace this process. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail("fds");
  /* Only 0-2 (for the action) and the status fd stay. */
  if (syscall(SYS_close_range, STATUS_FD + 1, ~0U, 0) != 0) fail("fds");
  pid_t action = fork();
  if (action < 0) fail("fork");
  if (action == 0) {
    if (getppid() != 1) _exit(125);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    start_action(o, envp);
  }
  child_pid = action;
  /* SIGTERM and the like end the action (or reach it, --forward-signals): pid 1 would ignore them
   * without a handler, from inside its namespace and from outside alike (only SIGKILL is forced). */
  handle_signals();
  close(0);
  close(1);
  close(2);
  int status;
  struct rusage ru;
  for (;;) {
    pid_t got = wait4(-1, &status, 0, &ru);
    if (got == action) break;
    if (got < 0 && errno != EINTR) _exit(1);
  }
  report_exit(status, &ru);
  /* Our exit ends every process left in the namespace. */
  _exit(0);
}

/*
 * Default dispositions and an empty mask for the action, as if started from a shell: started by
 * posix_spawn from Node (which ignores SIGPIPE and SIGXFSZ) or forked by the server (whose SIGCHLD
 * handler each forked child drops at once). Handlers never survive exec, only ignored signals do:
 * the kernel lists those (SigIgn), so only they are reset, not all 64.
 */
static void reset_signals(void) {
  unsigned long long ignored = ~0ULL;
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[2048];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    const char *line = strstr(text, "\nSigIgn:");
    if (line) ignored = strtoull(line + 9, NULL, 16);
  }
  for (int sig = 1; sig < NSIG && sig <= 64; sig++)
    if (ignored & (1ULL << (sig - 1))) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * The starter's child: pid 1 of the action's PID namespace (with --pidns), or the action itself.
 * It waits at the gate, then contains itself (isolate) and becomes the init or the action.
 */
static void become_child(const struct options *o, char **envp, pid_t parent) __attribute__((noreturn));
static void become_child(const struct options *o, char **envp, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The parent died before the prctl took (pid 1 of a new namespace sees no parent: 0). */
  if (getppid() != parent) _exit(125);
  /* The status fd must not reach the action: only a failure before exec writes to it. */
  fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
  char go = 0;
  if (read(GATE_FD, &go, 1) != 1 || go != 'G') _exit(125);
  close(GATE_FD);
  isolate(o);
  if (o->pidns) run_init(o, envp);
  default_signals();
  start_action(o, envp);
}

/* One action: everything above, in order. The body of both ways in (command line, server). */
static int start_one(int argc, char **argv, char **envp) {
  struct options o;
  parse(argc, argv, &o);
  forwarding = o.forward_signals;
  reset_signals();
  /* Who to signal and whose process group to kill (the server's caller does not know our pid). */
  report("S %d\n", (int)getpid());

  /* Die with the caller (a SIGKILLed runner must not leave actions running); the child dies
   * with us through its own PR_SET_PDEATHSIG. */
  pid_t caller = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != caller) return 125;
  /* Its own process group, so the caller can kill everything it started at once. */
  if (setpgid(0, 0) != 0) usage("setpgid failed");
  if (o.pidns && unshare(CLONE_NEWPID) != 0) {
    report("E %d pidns\n", errno);
    return 1;
  }
  handle_signals();

  pid_t starter = getpid();
  pid_t child = fork();
  if (child < 0) {
    report("E %d fork\n", errno);
    return 1;
  }
  if (child == 0) become_child(&o, envp, o.pidns ? 0 : starter);

  child_pid = child;
  /* Nothing of ours stays open but the status fd (and 0-2). */
  close(GATE_FD);
  close(ROOT_FD);
  syscall(SYS_close_range, STATUS_FD + 1, ~0U, 0);
  report("P %d\n", (int)child);

  int status;
  struct rusage ru;
  pid_t got;
  while ((got = wait4(child, &status, 0, &ru)) < 0 && errno == EINTR) {
  }
  if (got < 0) {
    report("E %d wait\n", errno);
    return 1;
  }
  /* With --pidns the init has reported the action's end (exit 0), or the step that failed (127);
   * anything else means it could not. */
  if (!o.pidns) report_exit(status, &ru);
  else if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 127)) report("E %d wait\n", ECHILD);
  return 0;
}

/*
 * --serve: started once by the runner, fork one starter per request instead of the runner
 * executing this program per action (an exec of it cost the runner about 1 ms an action here).
 * Requests arrive on fd 3, a SOCK_SEQPACKET socket: one message each, its payload the starter's
 * argument count in decimal, then the arguments and the environment, each NUL-terminated, and
 * with it (SCM_RIGHTS) exactly six fds: the starter's 0 to 5. The starter reports on its own status
 * fd as always; this process answers nothing and is told nothing else. It ends when the caller
 * closes the socket, and dies with it (PR_SET_PDEATHSIG), and so do the starters (theirs).
 */
enum { SERVE_FD = 3, REQUEST_FDS = 6, MAX_REQUEST = 256 * 1024 };

/* The request's arguments and environment, in place in the payload; exits 126 on a malformed one. */
static void unpack(char *payload, size_t size, int *argc_out, char ***argv_out, char ***envp_out) {
  char *end = payload + size, *p = payload;
  long argc = strtol(p, NULL, 10);
  p += strlen(p) + 1;
  if (argc <= 0 || argc > 100000) _exit(126);
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  size_t envc = 0;
  for (char *q = p; q < end; q += strlen(q) + 1) envc++;
  char **envp = calloc(envc + 1, sizeof *envp);
  if (!argv || !envp) _exit(126);
  long i = 0;
  for (; i < argc && p < end; i++, p += strlen(p) + 1) argv[i] = p;
  if (i < argc) _exit(126);
  for (size_t e = 0; p < end; e++, p += strlen(p) + 1) envp[e] = p;
  *argc_out = (int)argc;
  *argv_out = argv;
  *envp_out = envp;
}

/* The six fds become 0-5, by way of copies above them so that none clobbers another. */
static void take_fds(const int *fds) {
  int high[6];
  for (int i = 0; i < 6; i++)
    if ((high[i] = fcntl(fds[i], F_DUPFD, 16)) < 0) _exit(126);
  for (int i = 0; i < 6; i++)
    if (dup2(high[i], i) != i) _exit(126);
  syscall(SYS_close_range, 6, ~0U, 0);
}

static void serve_one(char *payload, size_t size, const int *fds) __attribute__((noreturn));
static void serve_one(char *payload, size_t size, const int *fds) {
  take_fds(fds);
  int argc;
  char **argv, **envp;
  unpack(payload, size, &argc, &argv, &envp);
  _exit(start_one(argc, argv, envp));
}

/* Whether the request's starter options (before "--") include FLAG. */
static int requests(const char *payload, size_t size, const char *flag) {
  const char *end = payload + size, *p = payload + strlen(payload) + 1;
  for (p += strlen(p) + 1; p < end && strcmp(p, "--") != 0; p += strlen(p) + 1)
    if (strcmp(p, flag) == 0) return 1;
  return 0;
}

/*
 * With --pidns the server forks the action's init itself, into a PID namespace made for it, instead
 * of forking a starter that does: one process (a fork, an exit, a wait: about 0.4 ms here) fewer
 * per action. The init reports the action's end as always; the server names it in the S and P
 * lines (it is what the caller signals), and it is reaped here (reap_starters).
 */
static void serve_init(char *payload, size_t size, const int *fds, int own_pidns) {
  int status_fd = fds[5];
  /* Our children go to a new PID namespace for this one fork only, then to ours again. */
  if (unshare(CLONE_NEWPID) != 0) {
    dprintf(status_fd, "E %d pidns\n", errno);
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGCHLD, SIG_DFL); /* the server's reap_starters is not the init's */
    take_fds(fds);
    int argc;
    char **argv, **envp;
    unpack(payload, size, &argc, &argv, &envp);
    struct options o;
    parse(argc, argv, &o);
    forwarding = o.forward_signals;
    reset_signals();
    /* Its own process group: the caller's SIGKILL of -pid must reach it and nothing of ours. */
    setpgid(0, 0);
    become_child(&o, envp, 0);
  }
  int saved = errno;
  if (setns(own_pidns, CLONE_NEWPID) != 0) _exit(1); /* every later fork would land in that namespace */
  if (pid < 0) dprintf(status_fd, "E %d fork\n", saved);
  else dprintf(status_fd, "S %d\nP %d\n", (int)pid, (int)pid);
}

/*
 * A starter (or a served init) ended: kill what is left of its process group (an action run
 * without a PID namespace can leave processes there) while the starter is still unreaped, then
 * reap it. An unreaped child's pid cannot be reused, and so neither can the group it names:
 * after the reap, a SIGKILL of -pid could reach another action's new starter. Hence WNOWAIT
 * first. Only async-signal-safe calls (waitid, kill, waitpid).
 */
static void reap_starters(int sig) {
  (void)sig;
  int saved = errno;
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
    kill(-info.si_pid, SIGKILL);
    while (waitpid(info.si_pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  errno = saved;
}

static int serve(void) {
  pid_t caller = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != caller) return 125;
  /* Nothing the runner inherited without CLOEXEC is held here for the runner's life. */
  syscall(SYS_close_range, SERVE_FD + 1, ~0U, 0);
  /* Starters are reaped here, their group killed first (reap_starters); their caller learns their
   * end on their status pipe. */
  struct sigaction sa = {.sa_handler = reap_starters, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, NULL);
  int own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  static char payload[MAX_REQUEST + 1];
  for (;;) {
    struct iovec iov = {.iov_base = payload, .iov_len = MAX_REQUEST};
    union {
      struct cmsghdr header;
      char space[CMSG_SPACE(sizeof(int) * REQUEST_FDS)];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(SERVE_FD, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    int fds[REQUEST_FDS], count = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int given = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int k = 0; k < given; k++) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
        if (count < REQUEST_FDS) fds[count++] = fd;
        else close(fd);
      }
    }
    /* A malformed request starts nothing; its status pipe closes with nothing said (the caller: lost). */
    if (count == REQUEST_FDS && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && n > 0 && payload[n - 1] == '\0') {
      if (own_pidns >= 0 && requests(payload, (size_t)n, "--pidns")) {
        serve_init(payload, (size_t)n, fds, own_pidns);
      } else {
        pid_t pid = fork();
        if (pid == 0) {
          signal(SIGCHLD, SIG_DFL); /* the server's reap_starters would take the starter's child from its wait4 */
          serve_one(payload, (size_t)n, fds);
        }
      }
    }
    for (int k = 0; k < count; k++) close(fds[k]);
  }
}

int main(int argc, char **argv) {
  extern char **environ;
  if (argc == 2 && strcmp(argv[1], "--serve") == 0) return serve();
  return start_one(argc, argv, environ);
}
