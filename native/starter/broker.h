/*
 * The inotify broker: an action's inotify instances (and their watches) charged to a uid of its
 * own, not to the uid it runs as (broker.c says why and how).
 */
#ifndef MOUNTAT_STARTER_BROKER_H
#define MOUNTAT_STARTER_BROKER_H

#include <sys/resource.h>
#include <sys/types.h>

#include "options.h"

/* The init, before it forks the action: the channel the action's listener comes back by
 * (o->channel). 0, or -errno. */
int broker_channel(struct options *o);
/* The action: whether an init waits for a listener (a channel, so a PID namespace). */
int broker_wanted(const struct options *o);
/*
 * The action, its seccomp filter loaded (filter.c): LISTENER (taken, or -1 where the filter has
 * none) to the init, and the channel closed. Nothing without a channel (no init, no broker).
 * -errno where a listener could not be sent: the action must not start.
 */
int broker_send(const struct options *o, int listener);
/* The init: reap every child until ACTION ends (its status and rusage), serving its broker meanwhile. */
void broker_wait(struct options *o, pid_t action, int *status, struct rusage *ru);

#endif
