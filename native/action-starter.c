/*
 * mountat-action: starts one build action for the runner, chrooted into its input root.
 *
 * Why a separate static program rather than Node's child_process: Node can neither chroot a
 * child, nor start it in a new PID namespace, nor report its rusage (wait4); and a static
 * binary runs in any input root's absence of libraries. The runner keeps all policy; this only
 * performs the steps in order and reports.
 *
 * usage: mountat-action [--pidns] [--no-chroot] [--uid N --gid N [--groups G,G,...]] -- ARGV...
 * fds:   0 /dev/null, 1 and 2 the action's stdout and stderr files (from the runner),
 *        3 the input root (an O_PATH directory fd), 4 the gate (read), 5 the status (write),
 *        6 the working directory (an O_PATH directory fd the runner resolved beneath the root).
 * env:   exactly the action's environment; its PATH is used to find ARGV[0] inside the root,
 *        so the root needs no /usr/bin/env.
 *
 * Protocol on fd 5, one line each:
 *   "P <pid>"      the action's process exists (its pid in the runner's namespace; with --pidns,
 *                  pid 1 of a new PID namespace). It now waits on the gate, so the runner can
 *                  mount proc for that namespace and run its prestart hooks.
 *   "E <errno> <step>"  a step failed and the action did not start; <step> is one of pidns, fork,
 *                  chroot, chdir, credentials, exec, wait (so the runner can tell a missing capability,
 *                  its own problem, from a command that cannot run, the request's).
 *   "X <wait status> <utime us> <stime us> <maxrss KiB> <minflt> <majflt> <nswap> <inblock>
 *      <oublock> <msgsnd> <msgrcv> <nsignals> <nvcsw> <nivcsw>"   the action ended (wait4).
 * The gate (fd 4): one byte 'G' lets the action start; anything else or EOF aborts it (exit 125).
 *
 * With --pidns, pid 1 of the new namespace is a small init (the child of this program): the
 * action runs as pid 2, because pid 1 ignores signals it has no handler for (a `kill -9 $$` in
 * the action would do nothing) and must reap orphans. The init reports the action's "X" line
 * and exits, which ends every process left in the namespace.
 *
 * On SIGTERM/SIGINT/SIGHUP the child is SIGKILLed (with --pidns, killing pid 1 ends the whole
 * namespace); if this process itself dies, PR_SET_PDEATHSIG kills the child.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { ROOT_FD = 3, GATE_FD = 4, STATUS_FD = 5, CWD_FD = 6 };

static volatile pid_t action_pid = 0;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof line) return;
  /* The runner reads whole lines; a short write to a pipe of < PIPE_BUF bytes cannot happen. */
  ssize_t ignored = write(STATUS_FD, line, (size_t)n);
  (void)ignored;
}

static void report_exit(int status, const struct rusage *ru) {
  report("X %d %lld %lld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n", status,
         (long long)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec, (long long)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
         ru->ru_maxrss, ru->ru_minflt, ru->ru_majflt, ru->ru_nswap, ru->ru_inblock, ru->ru_oublock, ru->ru_msgsnd, ru->ru_msgrcv,
         ru->ru_nsignals, ru->ru_nvcsw, ru->ru_nivcsw);
}

static void usage(const char *why) {
  fprintf(stderr, "mountat-action: %s\n", why);
  exit(126);
}

static void forward_kill(int sig) {
  (void)sig;
  if (action_pid > 0) kill(action_pid, SIGKILL);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) usage(what);
  return value;
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

int main(int argc, char **argv) {
  int pidns = 0, chroot_root = 1;
  long uid = -1, gid = -1;
  const char *groups = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "--pidns") == 0) {
      pidns = 1;
    } else if (strcmp(argv[i], "--no-chroot") == 0) {
      chroot_root = 0;
    } else if (strcmp(argv[i], "--uid") == 0 && i + 1 < argc) {
      uid = number(argv[++i], "bad --uid");
    } else if (strcmp(argv[i], "--gid") == 0 && i + 1 < argc) {
      gid = number(argv[++i], "bad --gid");
    } else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc) {
      groups = argv[++i];
    } else {
      usage("unknown option");
    }
  }
  if (i >= argc) usage("no command after --");
  if ((uid < 0) != (gid < 0)) usage("--uid and --gid go together");
  char **action_argv = &argv[i];
  extern char **environ;
  char **envp = environ;

  /* Started by posix_spawn from Node, which ignores SIGPIPE and may block signals: the action
   * must get default dispositions and an empty mask, as if started from a shell. */
  for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);

  /* Die with the runner (a SIGKILLed runner must not leave actions running), then the action
   * dies with us through its own PR_SET_PDEATHSIG. */
  pid_t runner = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != runner) return 125;
  /* Its own process group, so the runner can kill everything it started at once. */
  if (setpgid(0, 0) != 0) usage("setpgid failed");
  if (pidns && unshare(CLONE_NEWPID) != 0) {
    report("E %d pidns\n", errno);
    return 1;
  }
  struct sigaction sa = {.sa_handler = forward_kill};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  pid_t starter = getpid();
  pid_t child = fork();
  if (child < 0) {
    report("E %d fork\n", errno);
    return 1;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The starter died before the prctl took (pid 1 of a new namespace sees no parent: 0). */
    if (getppid() != (pidns ? 0 : starter)) _exit(125);
    /* The status fd must not reach the action: only a failure before exec writes to it. */
    fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
    char go = 0;
    if (read(GATE_FD, &go, 1) != 1 || go != 'G') _exit(125);
    close(GATE_FD);
    if (pidns) {
      /* The init: start the action as pid 2, reap everything, report the action's end. */
      pid_t action = fork();
      if (action < 0) {
        report("E %d fork\n", errno);
        _exit(1);
      }
      if (action > 0) {
        close(ROOT_FD);
        close(CWD_FD);
        action_pid = action;
        int status;
        struct rusage ru;
        for (;;) {
          pid_t got = wait4(-1, &status, 0, &ru);
          if (got == action) break;
          if (got < 0 && errno != EINTR) _exit(1);
        }
        report_exit(status, &ru);
        _exit(0);
      }
    }
    /* chroot through the fd: fchdir to it, then chroot("."); then into the working directory by
     * its fd. No path of the root or beneath it is looked up here. */
    const char *step = "chroot";
    if (chroot_root && (fchdir(ROOT_FD) != 0 || chroot(".") != 0)) goto failed;
    step = "chdir";
    if (fchdir(CWD_FD) != 0) goto failed;
    close(ROOT_FD);
    close(CWD_FD);
    step = "credentials";
    if (gid >= 0) {
      gid_t list[64];
      size_t n = 0;
      for (const char *g = groups; g != NULL && *g != '\0' && n < 64;) {
        char *end;
        list[n++] = (gid_t)strtoul(g, &end, 10);
        g = *end == ',' ? end + 1 : NULL;
      }
      if (setgroups(n, list) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0) goto failed;
    }
    /* Default dispositions for the action: the starter's handlers must not be inherited. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    step = "exec";
    int err = exec_in_path(action_argv, envp);
    errno = err;
  failed:
    report("E %d %s\n", errno, step);
    _exit(127);
  }

  action_pid = child;
  close(GATE_FD);
  close(ROOT_FD);
  close(CWD_FD);
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
  /* With --pidns the init has reported the action's end; its own exit status says whether it could. */
  if (!pidns) report_exit(status, &ru);
  else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) report("E %d wait\n", ECHILD);
  return 0;
}
