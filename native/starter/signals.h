/* The starter's signal handling: what reaches the action, and the action's own dispositions. */
#ifndef MOUNTAT_STARTER_SIGNALS_H
#define MOUNTAT_STARTER_SIGNALS_H

#include <sys/types.h>

/* SIGTERM, SIGINT and SIGHUP (and SIGQUIT, forwarded) end the action with SIGKILL, or with
 * FORWARD reach it as themselves, once signals_reach() named it. */
void handle_signals(int forward);
/* The process the handled signals go to, once it exists. */
void signals_reach(pid_t child);
/* The handled signals back to their defaults, for the action. */
void default_signals(void);
/* Every ignored signal back to its default and an empty mask, as a shell would start the action. */
void reset_signals(void);
/* For a process that forks many children and never changes what it ignores (the server): the
 * ignored set is read here once, and reset_signals() in each child uses it. */
void remember_ignored_signals(void);

#endif
