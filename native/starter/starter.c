#define _GNU_SOURCE
#include "starter.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "cgroup.h"
#include "kernel.h"
#include "protocol.h"
#include "signals.h"
#include "steps.h"

/*
 * The action is cloned with CLONE_VM | CLONE_VFORK, as posix_spawn does, rather than forked: it
 * shares the init's memory until its exec, so no copy of the init's address space is made for it
 * (and torn down again at the exec), and the init waits, suspended, until it has executed. It
 * runs on this stack of its own meanwhile; what it writes to memory the init sees, so the action's
 * steps (steps.c, broker_send) keep their state on this stack, never in the init's variables. It
 * ends with _exit, never exit: no atexit handler or stdio buffer of the init's runs twice.
 */
static char action_stack[128 * 1024] __attribute__((aligned(16)));

struct action_args {
  const struct options *o;
  char **envp;
};

static int action_main(void *arg) {
  const struct action_args *a = arg;
  if (getppid() != 1) _exit(125);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  start_action(a->o, a->envp);
}

/* pid 1 of the action's PID namespace: start the action as pid 2, reap everything (serving its
 * inotify broker meanwhile: broker.c), report its end. */
static void run_init(const struct options *o, char **envp) __attribute__((noreturn));
static void run_init(const struct options *o, char **envp) {
  /* Not dumpable: the action, even as root with its capabilities, cannot open /proc/1/fd/5,
   * read /proc/1/environ or ptrace this process. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail(STEP_fds);
  /* Only 0-2 (for the action) and the status fd stay. */
  if (syscall(SYS_close_range, STATUS_FD + 1, ~0U, 0) != 0) fail(STEP_fds);
  if (broker_channel() != 0) fail(STEP_limits);
  struct action_args args = {.o = o, .envp = envp};
  pid_t action = clone(action_main, action_stack + sizeof action_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  if (action < 0) fail(STEP_fork);
  signals_reach(action);
  /* SIGTERM and the like end the action (or reach it, --forward-signals): pid 1 would ignore them
   * without a handler, from inside its namespace and from outside alike (only SIGKILL is forced). */
  handle_signals(o->forward_signals);
  close(0);
  close(1);
  close(2);
  int status;
  struct rusage ru;
  broker_wait(action, &status, &ru);
  report_exit(STATUS_FD, status, &ru);
  /* Our exit ends every process left in the namespace (the broker too). */
  _exit(0);
}

/*
 * The starter's child (or a served init): pid 1 of the action's PID namespace (with --pidns), or
 * the action itself. It waits at the gate, then contains itself (steps.c) and becomes the init or
 * the action.
 */
void become_child(const struct options *o, char **envp, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The parent died before the prctl took (pid 1 of a new namespace sees no parent: 0). */
  if (getppid() != parent) _exit(125);
  /* The status fd must not reach the action: only a failure before exec writes to it. */
  fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);
  /* In every cgroup of the action while the caller sets up, before the gate (cgroup.c). A failure
   * is told once the gate has opened or closed: the caller opens it only after the "P" line, which
   * whoever forked us writes after the fork, and no line of ours may come before that one. */
  enum start_step step;
  int joined = join_cgroups(o, &step), error = errno;
  int go = gate_opened();
  errno = error;
  if (joined != 0) fail(step);
  if (!go) _exit(125);
  close(GATE_FD);
  contain(o);
  if (o->pidns) run_init(o, envp);
  default_signals();
  start_action(o, envp);
}

int lead_group(void) {
  reset_signals();
  return setpgid(0, 0);
}

pid_t fork_child(const struct options *o, int fd, int home_pidns, int cgroup) {
  /* Our next child goes to a new PID namespace (and is pid 1 there); we stay where we are. */
  if (o->pidns && unshare(CLONE_NEWPID) != 0) {
    report_failed(fd, STEP_pidns, errno);
    return -1;
  }
  pid_t child = fork_into_cgroup(cgroup);
  if (child == 0) return 0;
  int saved = errno;
  /* Every later fork would land in that namespace: the server forks for many actions. */
  if (o->pidns && home_pidns != -1 && setns(home_pidns, CLONE_NEWPID) != 0) _exit(1);
  /* Out of processes or memory is the fork's; anything else, the cgroup's (removed, say). */
  if (child < 0) report_failed(fd, cgroup >= 0 && saved != EAGAIN && saved != ENOMEM ? STEP_cgroup : STEP_fork, saved);
  return child;
}

/*
 * The starter, executed or forked by the server: "S", then the child that waits at the gate, "P",
 * and the action's end ("X", or the "E" of the step that failed).
 */
int start_one(const struct options *o, char **envp) {
  /* Its own process group, so the caller can kill everything it started at once. */
  if (lead_group() != 0) usage("setpgid failed");
  /* Who to signal and whose process group to kill (the server's caller does not know our pid). */
  report_started(STATUS_FD, getpid());

  /* Die with the caller (a SIGKILLed runner must not leave actions running); the child dies
   * with us through its own PR_SET_PDEATHSIG. */
  pid_t caller = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != caller) return 125;
  handle_signals(o->forward_signals);

  pid_t starter = getpid();
  pid_t child = fork_child(o, STATUS_FD, -1, o->cgroup);
  if (child < 0) return 1;
  if (child == 0) become_child(o, envp, o->pidns ? 0 : starter);

  signals_reach(child);
  /* Nothing of ours stays open but the status fd (and 0-2). */
  close(GATE_FD);
  close(ROOT_FD);
  syscall(SYS_close_range, STATUS_FD + 1, ~0U, 0);
  report_pid(STATUS_FD, child);

  int status;
  struct rusage ru;
  pid_t got;
  while ((got = wait4(child, &status, 0, &ru)) < 0 && errno == EINTR) {
  }
  if (got < 0) {
    report_failed(STATUS_FD, STEP_wait, errno);
    return 1;
  }
  if (!o->pidns) report_exit(STATUS_FD, status, &ru);
  else report_init_end(STATUS_FD, status);
  return 0;
}

void report_init_end(int fd, int status) {
  /* The init has reported the action's end (exit 0), or the step that failed (127). An init
   * killed by a signal (only SIGKILL reaches it) was killed from outside with everything in its
   * namespace (the action's cgroup emptied with cgroup.kill, or an OOM kill of the whole action
   * under memory.oom.group): "K", which is how the action ended unless the init had reported
   * first. Anything else means the init could not report. */
  if (WIFSIGNALED(status)) report_killed(fd, WTERMSIG(status));
  else if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 127)) report_failed(fd, STEP_wait, ECHILD);
}
