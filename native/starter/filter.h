/* The action's seccomp filter: built once per set of options, loaded last before exec. */
#ifndef MOUNTAT_STARTER_FILTER_H
#define MOUNTAT_STARTER_FILTER_H

#include "options.h"

/* NULL when every name of LIST (comma-separated) may be allowed back, or why not (a usage error). */
const char *check_allowed_syscalls(const char *list);
/*
 * Sets o->filter to the program for O's options, built with libseccomp the first time a set of
 * options is seen and kept for the next (the server forks many actions from one set); or to NULL,
 * with o->filter_error, where it could not be built. Where the kernel has user notification, the
 * program opens with o->filter_notify instructions that hand inotify to the broker (filter.c).
 */
void prepare_filter(struct options *o);
/*
 * Loads o->filter on the calling thread (NO_NEW_PRIVS already set). With LISTENER (an action with
 * a broker), the program with the broker's calls, and *LISTENER its listener; or, where there can
 * be none (no user notification, or EBUSY: another filter of the chain has one), the program
 * without them and *LISTENER -1. Without LISTENER, the program without them. 0, or -errno (rsys:
 * the action may share the server's memory).
 */
int load_filter(const struct options *o, int *listener);

#endif
