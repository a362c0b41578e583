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
#include "raw.h"

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

pid_t fork_into_cgroup(struct options *o, int cgroup) {
  o->born_into_cgroup = 0;
  if (cgroup < 0) return fork();
  struct clone_args_ args = {.flags = CLONE_INTO_CGROUP_, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgroup};
  o->born_into_cgroup = 1;
  /* A raw clone3 as a fork: the child returns here on a copy of our stack. This process is single
   * threaded, so nothing of libc's state is half-held in the child. */
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid >= 0 || (errno != ENOSYS && errno != E2BIG)) return (pid_t)pid;
  /* clone3 before 5.3 (ENOSYS), or one without the cgroup field before 5.7 (E2BIG). */
  o->born_into_cgroup = 0;
  return fork();
}

int join_cgroup_file(int fd) {
  /* "0": the writer's own thread group, whichever PID namespace it is in. */
  long rc = RS(SYS_write, fd, "0", 1);
  return rc == 1 ? 0 : rc < 0 ? (int)rc : -EIO;
}

int join_cgroup_dir(int cgroup) {
  cleanup_close int procs = RSI(SYS_openat, cgroup, "cgroup.procs", O_WRONLY | O_CLOEXEC);
  return procs < 0 ? procs : join_cgroup_file(procs);
}

int set_oom_score_adj(int at, const char *path, int adj) {
  cleanup_close int fd = RSI(SYS_openat, at, path, O_WRONLY | O_CLOEXEC);
  char text[16];
  int n = snprintf(text, sizeof text, "%d", adj);
  long rc = fd < 0 ? fd : RS(SYS_write, fd, text, n);
  return rc == n ? 0 : rc < 0 ? (int)rc : -EIO;
}

int join_cgroups(const struct options *o, enum start_step *step) {
  *step = STEP_cgroup;
  int rc = 0;
  if (o->cgroup >= 0 && !o->born_into_cgroup) rc = join_cgroup_dir(o->cgroup);
  for (int i = 0; rc == 0 && i < o->joins; i++) rc = join_cgroup_file(o->join[i]);
  /* The action never holds them. */
  if (o->cgroup >= 0) RS(SYS_close, o->cgroup);
  for (int i = 0; i < o->joins; i++) RS(SYS_close, o->join[i]);
  if (rc != 0) return rc;
  /* Inherited by everything the action starts: the kernel's OOM killer then takes an action
   * before the runner. Written with our capabilities (CAP_SYS_RESOURCE, where the caller has it),
   * it is also the floor the action cannot go below. (An init that shares the server's memory
   * never comes here: its action does all this itself, start_action.) */
  *step = STEP_limits;
  if (o->oom_score_adj != OOM_SCORE_KEEP) return set_oom_score_adj(AT_FDCWD, "/proc/self/oom_score_adj", o->oom_score_adj);
  return 0;
}
