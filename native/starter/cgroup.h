/* The action's cgroups, joined by its own first process rather than by the caller (cgroup.c). */
#ifndef MOUNTAT_STARTER_CGROUP_H
#define MOUNTAT_STARTER_CGROUP_H

#include <sys/types.h>

#include "options.h"
#include "protocol.h"

/*
 * fork(), the child born into the cgroup CGROUP (a v2 directory fd; -1: where the caller is) with
 * clone3(CLONE_INTO_CGROUP). Where the kernel has no CLONE_INTO_CGROUP (before 5.7), a plain fork:
 * join_cgroups() then joins it by writing. As fork: the pid, 0 in the child, -1 with errno.
 */
pid_t fork_into_cgroup(int cgroup);
/*
 * In the child, before its gate: join the cgroups of the other trees (--join, v1), and the v2 one
 * where it was not born there; then --oom-score-adj. Their fds are closed. -1 with errno, *STEP
 * naming the step that failed (STEP_cgroup, STEP_limits).
 */
int join_cgroups(const struct options *o, enum start_step *step);

#endif
