/*
 * The starter's side of its protocol with the caller (src/sandbox/protocol.ts parses it).
 *
 * fds:   0, 1, 2 the action's stdin, stdout and stderr; 3 the input root (an O_PATH directory
 *        fd the caller resolved); 4 the gate (read end); 5 the status (write end); 6 and up
 *        the action's cgroup's (--cgroup, --join: cgroup.c), closed before the gate.
 *
 * Protocol on fd 5, one line each:
 *   "S <pid>"      the starter's own pid (its process group), first.
 *   "P <pid>"      the action's process exists (its pid in the caller's namespace; with --pidns,
 *                  pid 1 of the new PID namespace). It now waits on the gate, so the caller can
 *                  mount proc for that namespace and run its prestart hooks.
 *   "E <errno> <step>"  a step failed and the action did not start. <step> is one of
 *                  START_STEPS (step-names.h, generated from src/sandbox/start-steps.ts): the
 *                  caller can tell a missing capability (its own problem) from a command that
 *                  cannot run (the request's).
 *   "X <wait status> <utime us> <stime us> <maxrss KiB> <minflt> <majflt> <nswap> <inblock>
 *      <oublock> <msgsnd> <msgrcv> <nsignals> <nvcsw> <nivcsw>"   the action ended (wait4).
 *   "K <signal>"   (--pidns, from the starter, or from the server for an init it forked) the
 *                  init was killed by <signal> from outside, with
 *                  everything in its namespace: its cgroup emptied (cgroup.kill), or an OOM kill
 *                  of the whole action. The action's end unless the init's "X" came first.
 * The gate (fd 4): one byte 'G' lets the action start; anything else or EOF aborts it (exit 125).
 *
 * The end cannot be forged from inside: with --pidns, the init that waits for the action and
 * writes "X" is pid 1 of the action's namespaces, not dumpable and holding every capability the
 * action lacks, so the action can neither open /proc/1/fd/5 nor ptrace it nor signal it (pid 1
 * ignores signals from inside its namespace that it has no handler for); only it holds fd 5.
 * Without --pidns the starter (outside every namespace of the action) reports the end itself.
 */
#ifndef MOUNTAT_STARTER_PROTOCOL_H
#define MOUNTAT_STARTER_PROTOCOL_H

#include <sys/resource.h>

#include <sys/types.h>

#include "step-names.h"

enum { ROOT_FD = 3, GATE_FD = 4, STATUS_FD = 5 };

/* The steps, by the names the caller knows them by: STEP_mount and so on. */
enum start_step {
#define STEP_ENUM(step) STEP_##step,
  START_STEPS(STEP_ENUM)
#undef STEP_ENUM
};

/* Each writes one status line (two for report_served) to FD in a single write. */
void report_started(int fd, pid_t starter);
void report_pid(int fd, pid_t pid);
/* A served init is both the process the caller signals and the action's process: "S" and "P" at once. */
void report_served(int fd, pid_t init);
void report_failed(int fd, enum start_step step, int error);
void report_exit(int fd, int status, const struct rusage *ru);
void report_killed(int fd, int signal);
/* A step failed with ERROR (an errno value): say which on fd 5, and end without starting the action. */
void fail(enum start_step step, int error) __attribute__((noreturn));
/* fail(STEP) where RC, a step's result, is -errno; nothing otherwise. */
void fail_on(enum start_step step, long rc);
/* Whether the caller opened the gate (fd 4): one byte 'G'; anything else or EOF aborts. */
int gate_opened(void);

#endif
