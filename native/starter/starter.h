/*
 * The starter: one action's processes, from the gate to the report of its end. Both ways in
 * take the same path: the command line (main.c) runs start_one; the fork server (server.c) forks
 * a process that runs start_one, or, with --pidns, forks the init itself with fork_child and has
 * it lead_group and become_child, as start_one's child does.
 */
#ifndef MOUNTAT_STARTER_STARTER_H
#define MOUNTAT_STARTER_STARTER_H

#include <sys/types.h>

#include "options.h"

/* One action, from the parsed options: S, its child, P, then its end. Returns the exit status. */
int start_one(struct options *o, char **envp);
/*
 * Makes the calling process the one the caller signals and kills the group of (a starter, or a
 * served init): signals as a shell leaves them, and a process group of its own. As setpgid.
 */
int lead_group(void);
/*
 * Forks the process that waits at the gate, with --pidns into a new PID namespace (it is then
 * pid 1 there), born into the v2 cgroup CGROUP where that is not -1 (the caller's fd of
 * --cgroup). A failed step is reported on FD ("E ... pidns", "E ... fork" or "E ... cgroup") and
 * gives -1. HOME_PIDNS, when not -1, is where the caller's later children are born again (the
 * server's).
 */
pid_t fork_child(struct options *o, int fd, int home_pidns, int cgroup);
/* An init (--pidns) was reaped with wait status STATUS: report on FD what it could not itself. */
void report_init_end(int fd, int status);
/* The forked child: the gate, then containment (steps.c), then the init or the action. PARENT is
 * who must still be its parent (0 for pid 1 of a new namespace). Never returns. */
void become_child(struct options *o, char **envp, pid_t parent) __attribute__((noreturn));

#endif
