/*
 * Ownership by scope, as crun's cleanup_close and bubblewrap's cleanup_fd do it: a variable
 * marked cleanup_close closes its fd when it goes out of scope, on every path, so no fd is
 * closed by hand and none is forgotten on an early return. take_fd hands one on.
 */
#ifndef MOUNTAT_STARTER_CLEANUP_H
#define MOUNTAT_STARTER_CLEANUP_H

#include <stdlib.h>

#include "raw.h"

static inline void close_fd(int *fd) {
  /* rsys: it writes no errno, so a failed step's error survives it wherever it is kept. */
  if (*fd >= 0) RS(SYS_close, *fd);
}

static inline void free_pointer(void *pointer) {
  free(*(void **)pointer);
}

/* The fd, which the variable no longer owns. */
static inline int take_fd(int *fd) {
  int taken = *fd;
  *fd = -1;
  return taken;
}

#define cleanup_close __attribute__((cleanup(close_fd)))
#define cleanup_free __attribute__((cleanup(free_pointer)))

#endif
