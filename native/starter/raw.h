/*
 * System calls that return -errno and write nothing but what the kernel writes.
 *
 * Why: the server clones each action's init with CLONE_VM (server.c), so the init, and the action
 * until its exec, share the server's memory with the server and with every other init. glibc's
 * wrappers store their error in errno, which is thread-local storage of the server's thread that
 * all of them share: one process's failure would be read as another's. Everything the init and the
 * action do before exec therefore calls the kernel through rsys() and carries the error as a
 * negative return value; nothing there reads errno, and nothing there writes it but glibc calls
 * that cannot fail (sigaction and sigaddset of a valid signal, sigprocmask) or pure ones
 * (vsnprintf, strtoul on checked text). glibc fails some calls without asking the kernel:
 * signal() of its own signals 32 and 33 did so, one init's EINVAL read by the server as its own
 * (signals.c).
 * bench/limit.c does the same for the same reason.
 */
#ifndef MOUNTAT_STARTER_RAW_H
#define MOUNTAT_STARTER_RAW_H

#include <stddef.h>
#include <sys/syscall.h>

#include "kernel.h"

static inline long rsys(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "0"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#else
#error "the starter is written for x86_64 and aarch64"
#endif
}

/* RS(SYS_x, args...): up to six arguments, each cast to long. */
#define RS_(n, a, b, c, d, e, f, ...) rsys((long)(n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define RS(...) RS_(__VA_ARGS__, 0, 0, 0, 0, 0, 0)

/* A result of RS as an int: the value, or -errno. */
#define RSI(...) ((int)RS(__VA_ARGS__))

/* The error of a result (0 for success or a value), positive, as the "E" line reports it. */
static inline int raw_error(long rc) {
  return rc < 0 && rc > -4096 ? (int)-rc : 0;
}

/* Never returns: the whole process ends (the init, the action, the broker). */
static inline void __attribute__((noreturn)) raw_exit(int status) {
  for (;;) RS(SYS_exit_group, status);
}

/*
 * clone3(ARGS) with the child running FN(ARG) on ARGS->stack and exiting with its result, for a
 * child that shares our memory (CLONE_VM): it cannot return into our stack frame as a fork does.
 * The parent gets the child's pid or -errno. Only where RAW_CLONE3 is defined (x86_64); elsewhere
 * the server forks each init (server.c).
 */
#if defined(__x86_64__)
#define RAW_CLONE3 1
long raw_clone3(struct clone_args_ *args, size_t size, int (*fn)(void *), void *arg);
/*
 * raw_clone3, or where clone3 is refused (ENOSYS: a container's seccomp profile) or lacks the
 * cgroup field (E2BIG: before 5.7), the older clone with the same flags but CLONE_INTO_CGROUP.
 * *BORN says, before the child can read it, whether the child is born into ARGS->cgroup.
 */
long clone_sharing(struct clone_args_ *args, int *born, int (*fn)(void *), void *arg);
#endif

#endif
