#define _GNU_SOURCE
#include "protocol.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void report(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof line) return;
  /* The caller reads whole lines; a write of < PIPE_BUF bytes to a pipe is never split. */
  ssize_t ignored = write(STATUS_FD, line, (size_t)n);
  (void)ignored;
}

void report_exit(int status, const struct rusage *ru) {
  report("X %d %lld %lld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n", status,
         (long long)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec, (long long)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
         ru->ru_maxrss, ru->ru_minflt, ru->ru_majflt, ru->ru_nswap, ru->ru_inblock, ru->ru_oublock, ru->ru_msgsnd, ru->ru_msgrcv,
         ru->ru_nsignals, ru->ru_nvcsw, ru->ru_nivcsw);
}

void fail(const char *step) {
  report("E %d %s\n", errno, step);
  _exit(127);
}
