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
#include "raw.h"
#include "signals.h"
#include "steps.h"

/*
 * The action is cloned with CLONE_VM | CLONE_VFORK, as posix_spawn does, rather than forked: it
 * shares the init's memory until its exec, so no copy of the init's address space is made for it
 * (and torn down again at the exec), and the init waits, suspended, until it has executed. It
 * runs on a stack of its own meanwhile (o->action_stack, in the init's block where the server
 * made one, else this one); what it writes to memory the init sees, so the action's steps
 * (steps.c, broker_send) keep their state on that stack, never in the init's variables. It ends
 * with an exit of its own (raw_exit), never exit(): no atexit handler or stdio buffer of the
 * init's runs twice.
 */
static char action_stack[128 * 1024] __attribute__((aligned(16)));

struct action_args {
  const struct options *o;
  char **envp;
};

static int action_main(void *arg) {
  const struct action_args *a = arg;
  if (RS(SYS_getppid) != 1) raw_exit(125);
  RS(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  start_action(a->o, a->envp);
}

/* The action, cloned as above: its pid, or -errno. Where the init shares the server's memory, the
 * action is born into its v2 cgroup here (the init is in none of them: server.c). */
static pid_t clone_action(struct options *o, struct action_args *args) {
  char *stack = o->action_stack != NULL ? o->action_stack : action_stack;
  size_t size = o->action_stack != NULL ? o->action_stack_size : sizeof action_stack;
#if defined(RAW_CLONE3)
  int into = o->shares_memory && o->cgroup >= 0;
  struct clone_args_ clone = {.flags = CLONE_VM | CLONE_VFORK | (into ? CLONE_INTO_CGROUP_ : 0),
                              .exit_signal = SIGCHLD,
                              .stack = (uint64_t)stack,
                              .stack_size = size,
                              .cgroup = (uint64_t)(into ? o->cgroup : 0)};
  /* Where it cannot be born there (clone3 refused), the action joins its v2 cgroup by writing. */
  return (pid_t)clone_sharing(&clone, &o->born_into_cgroup, action_main, args);
#else
  /* glibc's clone wrapper: its errno is ours alone here, for only a forked init gets this far
   * (the server clones one that shares its memory only where RAW_CLONE3 is). */
  pid_t pid = clone(action_main, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, args);
  return pid < 0 ? -errno : pid;
#endif
}

/* pid 1 of the action's PID namespace: start the action as pid 2, reap everything (serving its
 * inotify broker meanwhile: broker.c), report its end. */
static void run_init(struct options *o, char **envp) __attribute__((noreturn));
static void run_init(struct options *o, char **envp) {
  /* Not dumpable: the action, even as root with its capabilities, cannot open /proc/1/fd/5,
   * read /proc/1/environ or ptrace this process. (Dumpability is the memory's: an init that
   * shares the server's finds it so already, server.c.) */
  fail_on(STEP_fds, RS(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0));
  /* Only 0-2 (for the action) and the status fd stay; and, where the action enters its cgroups
   * itself, their fds and the caller's /proc, which are closed once it has its copies. */
  if (!o->shares_memory) fail_on(STEP_fds, RS(SYS_close_range, STATUS_FD + 1, ~0U, 0));
  fail_on(STEP_limits, broker_channel(o));
  struct action_args args = {.o = o, .envp = envp};
  pid_t action = clone_action(o, &args);
  /* Out of processes or memory is the clone's; anything else, the cgroup's (removed, say). */
  if (action < 0) fail(o->shares_memory && o->cgroup >= 0 && action != -EAGAIN && action != -ENOMEM ? STEP_cgroup : STEP_fork, -action);
  if (o->shares_memory) {
    /* The v2 cgroup's stays: the broker is born there too (broker_wait). */
    if (o->proc_fd >= 0) RS(SYS_close, o->proc_fd);
    for (int i = 0; i < o->joins; i++) RS(SYS_close, o->join[i]);
  }
  signals_reach(action);
  /* SIGTERM and the like end the action (or reach it, --forward-signals): pid 1 would ignore them
   * without a handler, from inside its namespace and from outside alike (only SIGKILL is forced). */
  handle_signals(o->forward_signals);
  RS(SYS_close, 0);
  RS(SYS_close, 1);
  RS(SYS_close, 2);
  int status;
  struct rusage ru;
  broker_wait(o, action, &status, &ru);
  report_exit(STATUS_FD, status, &ru);
  /* Our exit ends every process left in the namespace (the broker too). */
  raw_exit(0);
}

/*
 * The starter's child (or a served init): pid 1 of the action's PID namespace (with --pidns), or
 * the action itself. It waits at the gate, then contains itself (steps.c) and becomes the init or
 * the action. Its system calls are rsys (raw.h): it may share the server's memory.
 */
void become_child(struct options *o, char **envp, pid_t parent) {
  RS(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  /* The parent died before the prctl took (pid 1 of a new namespace sees no parent: 0). */
  if (RS(SYS_getppid) != parent) raw_exit(125);
  /* The status fd must not reach the action: only a failure before exec writes to it. */
  RS(SYS_fcntl, STATUS_FD, F_SETFD, FD_CLOEXEC);
  /* In every cgroup of the action while the caller sets up, before the gate (cgroup.c). A failure
   * is told once the gate has opened or closed: the caller opens it only after the "P" line, which
   * whoever forked us writes after the fork, and no line of ours may come before that one. */
  enum start_step step = STEP_limits;
  int rc = 0;
  /* An init that shares the server's memory stays out of the action's cgroups (server.c); the
   * action enters them, and sets its oom_score_adj through the caller's /proc (start_action),
   * opened here while it is still ours. */
  if (!o->shares_memory) rc = join_cgroups(o, &step);
  else if (o->oom_score_adj != OOM_SCORE_KEEP) rc = o->proc_fd = RSI(SYS_openat, AT_FDCWD, "/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  /* Its nice value, inherited by the action and all it starts, and a floor for them (their
   * RLIMIT_NICE, start_action): the caller's thread, which sets up, answers and tears down every
   * action, is then not queued behind the actions it serves when they fill the cores. Set here,
   * before the gate, so that the init's own work (its exit takes the namespaces down) is as nice. */
  if (rc >= 0 && o->nice != NICE_KEEP) {
    step = STEP_limits;
    rc = RSI(SYS_setpriority, PRIO_PROCESS, 0, o->nice);
  }
  int go = gate_opened();
  if (rc < 0) fail(step, -rc);
  if (!go) raw_exit(125);
  RS(SYS_close, GATE_FD);
  contain(o);
  if (o->pidns) run_init(o, envp);
  default_signals();
  start_action(o, envp);
}

int lead_group(void) {
  reset_signals();
  return RSI(SYS_setpgid, 0, 0);
}

pid_t fork_child(struct options *o, int fd, int home_pidns, int cgroup) {
  /* Our next child goes to a new PID namespace (and is pid 1 there); we stay where we are. */
  if (o->pidns && unshare(CLONE_NEWPID) != 0) {
    report_failed(fd, STEP_pidns, errno);
    return -1;
  }
  pid_t child = fork_into_cgroup(o, cgroup);
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
int start_one(struct options *o, char **envp) {
  /* Its own process group, so the caller can kill everything it started at once. */
  if (lead_group() != 0) usage("setpgid failed");
  /* Forked by the server, this process has a copy of the server's memory, where an init that
   * shares it may have named its own action (signals.c): nobody is ours yet. */
  signals_reach(0);
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
