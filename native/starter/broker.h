/*
 * The inotify broker: an action's inotify instances (and their watches) charged to a uid of its
 * own, not to the uid it runs as (broker.c says why and how).
 */
#ifndef MOUNTAT_STARTER_BROKER_H
#define MOUNTAT_STARTER_BROKER_H

#include <sys/resource.h>
#include <sys/types.h>

/* The filter's program, made once in this process (the server, before it forks actions); an
 * action makes it itself otherwise. -1 with errno set on a failure. */
int broker_prepare(void);
/* The init, before it forks the action: the channel the action's listener comes back by. As socketpair. */
int broker_channel(void);
/*
 * The action, after NO_NEW_PRIVS: its seccomp filter (inotify_init and inotify_init1 to the
 * broker), whose listener goes to the init. Nothing without a channel (no init, no broker), or
 * where the kernel has no user notification. -1 with errno set on a failure.
 */
int broker_install(void);
/* The init: reap every child until ACTION ends (its status and rusage), serving its broker meanwhile. */
void broker_wait(pid_t action, int *status, struct rusage *ru);

#endif
