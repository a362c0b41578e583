/* The per-action steps, in order: the action's namespaces and root, then its privileges, then exec. */
#ifndef MOUNTAT_STARTER_STEPS_H
#define MOUNTAT_STARTER_STEPS_H

#include "options.h"

void isolate(const struct options *o);
/* The action itself: its privileges, only fds 0-2, default signals, exec. Never returns. */
void start_action(const struct options *o, char **envp) __attribute__((noreturn));

#endif
