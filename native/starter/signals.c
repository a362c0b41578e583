#define _GNU_SOURCE
#include "signals.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

volatile pid_t child_pid = 0;
int forwarding = 0;

/* SIGTERM and friends: passed on as themselves (--forward-signals), or the end of the action. */
static void on_signal(int sig) {
  if (child_pid > 0) kill(child_pid, forwarding ? sig : SIGKILL);
}

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

void handle_signals(void) {
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) {
    if (FORWARDED[i] == SIGQUIT && !forwarding) continue;
    sigaction(FORWARDED[i], &sa, NULL);
  }
}

void default_signals(void) {
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) signal(FORWARDED[i], SIG_DFL);
}

/*
 * Default dispositions and an empty mask for the action, as if started from a shell: started by
 * posix_spawn from Node (which ignores SIGPIPE and SIGXFSZ) or forked by the server (whose SIGCHLD
 * handler each forked child drops at once). Handlers never survive exec, only ignored signals do:
 * the kernel lists those (SigIgn), so only they are reset, not all 64.
 */
void reset_signals(void) {
  unsigned long long ignored = ~0ULL;
  cleanup_close int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char text[2048];
    ssize_t n = read(fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
    const char *line = strstr(text, "\nSigIgn:");
    if (line) ignored = strtoull(line + 9, NULL, 16);
  }
  for (int sig = 1; sig < NSIG && sig <= 64; sig++)
    if (ignored & (1ULL << (sig - 1))) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}
