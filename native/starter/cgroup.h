/* The action's cgroups, joined by its own first process rather than by the caller (cgroup.c). */
#ifndef MOUNTAT_STARTER_CGROUP_H
#define MOUNTAT_STARTER_CGROUP_H

#include <sys/types.h>

#include "options.h"
#include "protocol.h"

/*
 * fork(), the child born into the cgroup CGROUP (a v2 directory fd; -1: where the caller is) with
 * clone3(CLONE_INTO_CGROUP), which o->born_into_cgroup then says. Where the kernel has no CLONE_INTO_CGROUP (before 5.7), a plain fork:
 * join_cgroups() then joins it by writing. As fork: the pid, 0 in the child, -1 with errno.
 */
pid_t fork_into_cgroup(struct options *o, int cgroup);
/*
 * In the child, before its gate: join the cgroups of the other trees (--join, v1), and the v2 one
 * where it was not born there; then --oom-score-adj. Their fds are closed. -errno, *STEP naming the step that failed (STEP_cgroup,
 * STEP_limits).
 */
int join_cgroups(const struct options *o, enum start_step *step);
/* Joins the v2 cgroup whose directory fd is CGROUP, by writing to its cgroup.procs. 0, or -errno. */
int join_cgroup_dir(int cgroup);
/* Joins the cgroup whose cgroup.procs FD is open for writing ("0": the writer). 0, or -errno. */
int join_cgroup_file(int fd);
/* Writes ADJ to the oom_score_adj file PATH beneath the directory fd AT. 0, or -errno. */
int set_oom_score_adj(int at, const char *path, int adj);

#endif
