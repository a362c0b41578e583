/* What an action may charge to per-user kernel limits it shares with the host's user of its uid. */
#ifndef MOUNTAT_STARTER_USER_LIMITS_H
#define MOUNTAT_STARTER_USER_LIMITS_H

/*
 * The action, after NO_NEW_PRIVS: its POSIX message queues bounded (RLIMIT_MSGQUEUE). (Its
 * inotify instances go to the broker by way of its seccomp filter: broker.c.) 0, or -errno.
 */
int limit_per_user(void);

/* The action's RLIMIT_NICE lowered so that, without CAP_SYS_NICE, it stays at NICE (0..19) or
 * nicer. 0, or -errno. */
int floor_nice(int nice);

#endif
