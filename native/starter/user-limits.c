#define _GNU_SOURCE
#include "user-limits.h"

#include <sys/resource.h>

#include "raw.h"

/*
 * POSIX message queues: the kernel charges a queue's bytes to its creator's real uid, for as long
 * as the queue exists, and refuses a new one when that uid's total would pass the *creator's*
 * RLIMIT_MSGQUEUE (ipc/mqueue.c: mqueue_get_inode, inc_rlimit_ucounts). The action's queues live
 * in its own IPC namespace and go with it; but while it runs (and after, for a queue it sent out
 * over a UNIX socket) they count against the uid it shares with the host. Bounding the action's
 * limit to half the kernel's default (819200 bytes: 4 queues of the default 10 x 8 KiB) means
 * the actions of a uid, together, can never take that uid past half of it: the host's processes
 * of that uid keep the other half whatever the actions do. It does not keep actions of one uid
 * from each other: one action can hold the half its siblings would use.
 *
 * Why not broker mq_open as inotify_init is: the queue would be created, owned and opened by the
 * broker's uid (every mq_open, not only the creating ones: the filter cannot tell them apart),
 * and so would every permission check on it; the sticky mqueue root would refuse the action's
 * own mq_unlink; and the name and attributes are in the action's memory, to be read by a
 * process allowed to ptrace it. That is a different queue semantics, not the same one charged
 * elsewhere.
 */
enum { MSGQUEUE_BYTES = 409600 };

static int limit_message_queues(void) {
  struct rlimit limit;
  int rc = RSI(SYS_prlimit64, 0, RLIMIT_MSGQUEUE, NULL, &limit);
  if (rc < 0) return rc;
  /* Only ever lowered: an operator's smaller limit stands. */
  if (limit.rlim_max > MSGQUEUE_BYTES) limit.rlim_max = MSGQUEUE_BYTES;
  if (limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
  return RSI(SYS_prlimit64, 0, RLIMIT_MSGQUEUE, &limit, NULL);
}

/*
 * RLIMIT_NICE is how far below 20 a process may bring its nice value without CAP_SYS_NICE: at most
 * 20 - NICE keeps the action at NICE (--nice) or nicer. Only ever lowered, as above.
 */
int floor_nice(int nice) {
  struct rlimit limit;
  int rc = RSI(SYS_prlimit64, 0, RLIMIT_NICE, NULL, &limit);
  if (rc < 0) return rc;
  if (limit.rlim_max > (rlim_t)(20 - nice)) limit.rlim_max = (rlim_t)(20 - nice);
  if (limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
  return RSI(SYS_prlimit64, 0, RLIMIT_NICE, &limit, NULL);
}

int limit_per_user(void) {
  /* inotify: the action's seccomp filter hands it to the broker (broker.c), and start_action sends
   * the broker its listener once that filter, the last thing before exec, is loaded. */
  return limit_message_queues();
}
