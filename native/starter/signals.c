#define _GNU_SOURCE
#include "signals.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "raw.h"

/*
 * The one piece of file-level state: a signal handler takes no argument, so the process it
 * passes a signal on to must be where the handler can read it. Until it is set a handled
 * signal does nothing (the caller follows its SIGTERM with a SIGKILL). Inits that share the
 * server's memory (server.c) share this variable too, and that is sound only because each writes
 * the same value: its action, pid 2 of its own PID namespace (the init's first child). A starter
 * forked by the server resets it (start_one). The handlers call the kernel through rsys: they
 * may run in such an init, where glibc's errno is the server's (raw.h).
 */
static volatile pid_t target = 0;

/* --forward-signals: the action gets the signal itself. */
static void pass_on(int sig) {
  if (target > 0) RS(SYS_kill, target, sig);
}

/* The runner's: a signal to the starter is the end of the action. */
static void end_action(int sig) {
  (void)sig;
  if (target > 0) RS(SYS_kill, target, SIGKILL);
}

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

void handle_signals(int forward) {
  struct sigaction sa = {.sa_handler = forward ? pass_on : end_action};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) {
    if (FORWARDED[i] == SIGQUIT && !forward) continue;
    sigaction(FORWARDED[i], &sa, NULL);
  }
}

void signals_reach(pid_t child) {
  target = child;
}

/*
 * SIG_DFL for SIG by the kernel's call, not glibc's signal(): that refuses glibc's own two
 * signals (32 and 33, which a server started by posix_spawn ignores) with EINVAL, written to
 * errno without a system call, and an init that shares the server's memory shares the server's
 * errno (raw.h): the server, parsing the next request at that moment, read the EINVAL as its
 * own ("bad --caps", about one action in 30,000 at 16 in flight). And the kernel keeps an
 * ignored signal ignored across exec: the action ignored both.
 */
static void default_disposition(int sig) {
  /* The kernel's struct sigaction (x86_64 and aarch64 alike), its mask the kernel's 8 bytes. */
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long long mask;
  } action = {.handler = SIG_DFL};
  RS(SYS_rt_sigaction, sig, &action, NULL, sizeof action.mask);
}

void default_signals(void) {
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) default_disposition(FORWARDED[i]);
}

/*
 * Default dispositions and an empty mask for the action, as if started from a shell: started by
 * posix_spawn from Node (which ignores SIGPIPE and SIGXFSZ, and whose glibc hands its own 32 and
 * 33 on ignored) or forked by the server (whose SIGCHLD handler each forked child drops at once).
 * Handlers never survive exec, only ignored signals do: the kernel lists those (SigIgn), so only
 * they are reset, not all 64.
 */
static unsigned long long ignored_signals(void) {
  unsigned long long ignored = ~0ULL;
  cleanup_close int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[2048];
    ssize_t n = read(fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
    const char *line = strstr(text, "\nSigIgn:");
    if (line) ignored = strtoull(line + 9, NULL, 16);
  }
  return ignored;
}

/* The server's ignored set, read once (remember_ignored_signals): its children inherit it. */
static unsigned long long remembered;
static int remembered_known;

void remember_ignored_signals(void) {
  remembered = ignored_signals();
  remembered_known = 1;
}

void reset_signals(void) {
  unsigned long long ignored = remembered_known ? remembered : ignored_signals();
  for (int sig = 1; sig <= 64; sig++)
    if (ignored & (1ULL << (sig - 1))) default_disposition(sig);
  unsigned long long none = 0;
  RS(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
}
