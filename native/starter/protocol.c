#define _GNU_SOURCE
#include "protocol.h"

#include <stdarg.h>
#include <stdio.h>

#include "raw.h"

static void report(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int fd, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof line) return;
  /* The caller reads whole lines; a write of < PIPE_BUF bytes to a pipe is never split. */
  RS(SYS_write, fd, line, n);
}

void report_started(int fd, pid_t starter) {
  report(fd, "S %d\n", (int)starter);
}

void report_pid(int fd, pid_t pid) {
  report(fd, "P %d\n", (int)pid);
}

void report_served(int fd, pid_t init) {
  report(fd, "S %d\nP %d\n", (int)init, (int)init);
}

static const char *const STEP_NAMES[] = {
#define STEP_NAME(step) #step,
    START_STEPS(STEP_NAME)
#undef STEP_NAME
};

void report_failed(int fd, enum start_step step, int error) {
  report(fd, "E %d %s\n", error, STEP_NAMES[step]);
}

void report_exit(int fd, int status, const struct rusage *ru) {
  report(fd, "X %d %lld %lld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n", status,
         (long long)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec, (long long)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
         ru->ru_maxrss, ru->ru_minflt, ru->ru_majflt, ru->ru_nswap, ru->ru_inblock, ru->ru_oublock, ru->ru_msgsnd, ru->ru_msgrcv,
         ru->ru_nsignals, ru->ru_nvcsw, ru->ru_nivcsw);
}

void report_killed(int fd, int signal) {
  report(fd, "K %d\n", signal);
}

void fail(enum start_step step, int error) {
  report_failed(STATUS_FD, step, error);
  raw_exit(127);
}

void fail_on(enum start_step step, long rc) {
  if (rc < 0) fail(step, raw_error(rc));
}

int gate_opened(void) {
  char go = 0;
  return RS(SYS_read, GATE_FD, &go, 1) == 1 && go == 'G';
}
