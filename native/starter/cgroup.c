#define _GNU_SOURCE
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "kernel.h"
#include "protocol.h"

/*
 * Why here and not in the caller: moving a running process between cgroups (a write of its pid to
 * cgroup.procs) takes the kernel's cgroup_threadgroup_rwsem for writing, which waits for an RCU
 * grace period and for every fork in progress on the machine: over 1 ms of the runner's Node
 * thread per action under load, for four trees on a hybrid host. Born into its v2 cgroup, the
 * action's first process never migrates there at all; the v1 trees (which have no
 * CLONE_INTO_CGROUP) it joins itself, while it waits at its gate, on a core of its own, while the
 * caller mounts. Either way it is in every cgroup before its first instruction, and before it
 * makes its cgroup namespace at the gate (rooted there: /proc/self/cgroup shows "/").
 */

/* Whether this process (the child, after fork_into_cgroup) was born into its v2 cgroup. */
static int born_into_cgroup;

pid_t fork_into_cgroup(int cgroup) {
  if (cgroup < 0) return fork();
  struct clone_args_ args = {.flags = CLONE_INTO_CGROUP_, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgroup};
  born_into_cgroup = 1;
  /* A raw clone3 as a fork: the child returns here on a copy of our stack. This process is single
   * threaded, so nothing of libc's state is half-held in the child. */
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid >= 0 || (errno != ENOSYS && errno != E2BIG)) return (pid_t)pid;
  /* clone3 before 5.3 (ENOSYS), or one without the cgroup field before 5.7 (E2BIG). */
  born_into_cgroup = 0;
  return fork();
}

static int write_zero(int fd) {
  /* "0": the writer's own thread group, whichever PID namespace it is in. */
  return write(fd, "0", 1) == 1 ? 0 : -1;
}

static int join_v2_by_writing(int cgroup) {
  cleanup_close int procs = openat(cgroup, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  return procs < 0 ? -1 : write_zero(procs);
}

static int set_oom_score_adj(int adj) {
  cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  char text[16];
  int n = snprintf(text, sizeof text, "%d", adj);
  return fd < 0 || write(fd, text, (size_t)n) != n ? -1 : 0;
}

int join_cgroups(const struct options *o, enum start_step *step) {
  *step = STEP_cgroup;
  int rc = 0;
  if (o->cgroup >= 0 && !born_into_cgroup) rc = join_v2_by_writing(o->cgroup);
  for (int i = 0; rc == 0 && i < o->joins; i++) rc = write_zero(o->join[i]);
  int saved = errno;
  /* The action never holds them. */
  if (o->cgroup >= 0) close(o->cgroup);
  for (int i = 0; i < o->joins; i++) close(o->join[i]);
  errno = saved;
  if (rc != 0) return -1;
  /* Inherited by everything the action starts: the kernel's OOM killer then takes an action
   * before the runner. Written with our capabilities (CAP_SYS_RESOURCE, where the caller has it),
   * it is also the floor the action cannot go below. */
  *step = STEP_limits;
  if (o->oom_score_adj != OOM_SCORE_KEEP && set_oom_score_adj(o->oom_score_adj) != 0) return -1;
  return 0;
}
