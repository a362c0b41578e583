/* The per-action steps, in order: the action's namespaces and root, then its privileges, then exec. */
#ifndef MOUNTAT_STARTER_STEPS_H
#define MOUNTAT_STARTER_STEPS_H

#include "options.h"

/* The action's namespaces, rooted at the input root (after the gate). */
void contain(const struct options *o);
/* Its privileges, only fds 0-2, default signals, then exec. Never returns. */
void start_action(const struct options *o, char **envp) __attribute__((noreturn));

#endif
