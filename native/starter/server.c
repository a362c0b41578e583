#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "cleanup.h"
#include "filter.h"
#include "kernel.h"
#include "options.h"
#include "protocol.h"
#include "signals.h"
#include "starter.h"

/*
 * --serve: started once by the runner, fork one starter per request instead of the runner
 * executing this program per action (an exec of it cost the runner about 1 ms an action here).
 * Requests arrive on fd 3, a SOCK_SEQPACKET socket: one message each, its payload the starter's
 * argument count in decimal, then the arguments and the environment, each NUL-terminated, and
 * with it (SCM_RIGHTS) the starter's fds from 0: the six of the protocol, then those of its
 * cgroups that its --cgroup and --join name (cgroup.c), at most MAX_REQUEST_FDS in all. With
 * --pidns and --cgroup, the init is born into that cgroup here. The starter reports on its own status
 * fd as always; this process answers nothing and is told nothing else. It ends when the caller
 * closes the socket, and dies with it (PR_SET_PDEATHSIG), and so do the starters (theirs).
 */
enum { SERVE_FD = 3, REQUEST_FDS = 6, MAX_REQUEST_FDS = FIRST_CGROUP_FD + 1 + MAX_JOIN, MAX_REQUEST = 256 * 1024 };

/*
 * The inits forked here (--pidns), each with its status fd, kept until it is reaped: an init
 * killed from outside with everything in its namespace (its cgroup's OOM group kill, a kill of
 * its cgroup) has no starter above it to say so, and this process, which reaps it, does ("K").
 */
struct served_init {
  pid_t pid;
  int status;
};
static struct served_init *served;
static size_t served_count, served_room;

/* Keeps STATUS for PID's end; where memory runs out the fd is closed (its end then unreported). */
static void remember_init(pid_t pid, int status) {
  if (served_count == served_room) {
    size_t room = served_room ? served_room * 2 : 64;
    struct served_init *more = realloc(served, room * sizeof *more);
    if (more == NULL) {
      close(status);
      return;
    }
    served = more;
    served_room = room;
  }
  served[served_count++] = (struct served_init){.pid = pid, .status = status};
}

/* A served init was reaped: report how it ended where it could not (report_init_end), forget it. */
static void served_init_ended(pid_t pid, int wait_status) {
  for (size_t k = 0; k < served_count; k++) {
    if (served[k].pid != pid) continue;
    report_init_end(served[k].status, wait_status);
    close(served[k].status);
    served[k] = served[--served_count];
    return;
  }
}

/* The fds a request came with, closed here once its starter has been forked (it has its own copies). */
struct request_fds {
  int fd[MAX_REQUEST_FDS];
  int count;
};

static void close_request_fds(struct request_fds *given) {
  for (int k = 0; k < given->count; k++) close_fd(&given->fd[k]);
}

#define cleanup_request_fds __attribute__((cleanup(close_request_fds)))

/* A request's arguments and environment: arrays pointing into its payload, freed with it. */
struct request {
  int argc;
  char **argv, **envp;
};

static void free_request(struct request *r) {
  free(r->argv);
  free(r->envp);
}

#define cleanup_request __attribute__((cleanup(free_request)))

/* Fills *r from the payload, in place; -1 for a malformed one (which starts nothing). */
static int unpack(char *payload, size_t size, struct request *r) {
  char *end = payload + size, *p = payload;
  long argc = strtol(p, NULL, 10);
  p += strlen(p) + 1;
  if (argc <= 0 || argc > 100000) return -1;
  size_t envc = 0;
  for (char *q = p; q < end; q += strlen(q) + 1) envc++;
  r->argv = calloc((size_t)argc + 1, sizeof *r->argv);
  r->envp = calloc(envc + 1, sizeof *r->envp);
  if (!r->argv || !r->envp) return -1;
  long i = 0;
  for (; i < argc && p < end; i++, p += strlen(p) + 1) r->argv[i] = p;
  if (i < argc) return -1;
  for (size_t e = 0; p < end; e++, p += strlen(p) + 1) r->envp[e] = p;
  r->argc = (int)argc;
  return 0;
}

/* The fds become 0 to COUNT-1, by way of copies above them so that none clobbers another. */
static void take_fds(const int *fds, int count) {
  int high[MAX_REQUEST_FDS];
  for (int i = 0; i < count; i++)
    if ((high[i] = fcntl(fds[i], F_DUPFD, MAX_REQUEST_FDS + 16)) < 0) _exit(126);
  for (int i = 0; i < count; i++)
    if (dup2(high[i], i) != i) _exit(126);
  syscall(SYS_close_range, count, ~0U, 0);
}

/*
 * One request, its options parsed here, once; what to fork follows from them.
 *
 * With --pidns the server forks the action's init itself, into a PID namespace made for it, instead
 * of forking a starter that does: one process (a fork, an exit, a wait: about 0.4 ms here) fewer
 * per action. The init reports the action's end as always; the server names it in the S and P
 * lines (it is what the caller signals), and it is reaped here (reap_starters). Otherwise the
 * server forks a starter, which runs start_one as the command line's does.
 */
static void start_request(char *payload, size_t size, const int *fds, int count, int own_pidns) {
  cleanup_request struct request r = {.argc = 0};
  if (unpack(payload, size, &r) != 0) return;
  struct options o;
  const char *why = parse_options(r.argc, r.argv, &o);
  /* Here, before the fork: built once per set of options, kept for the next request. */
  if (why == NULL) prepare_filter(&o);
  int init_here = o.pidns && own_pidns >= 0;
  /* An fd the options name but the request lacks: the child's join fails on it (EBADF). */
  int cgroup = why == NULL && o.cgroup >= 0 && o.cgroup < count ? fds[o.cgroup] : -1;
  pid_t pid = init_here ? fork_child(&o, fds[STATUS_FD], own_pidns, cgroup) : fork();
  if (pid != 0) {
    if (!init_here || pid < 0) return;
    report_served(fds[STATUS_FD], pid);
    int status = fcntl(fds[STATUS_FD], F_DUPFD_CLOEXEC, 0);
    if (status >= 0) remember_init(pid, status);
    return;
  }
  /* SIGCHLD, blocked here for the server's signalfd, is unblocked by lead_group (reset_signals)
   * in a starter and in an init, which wait for their own children. */
  take_fds(fds, count);
  /* A malformed command line is told on the request's stderr by the process forked for it, as
   * when executed (the server never writes to a caller's fd but a status line); with --pidns
   * among the options read before the fault, that process is the init, as before parsing. */
  if (why != NULL) usage(why);
  if (!init_here) _exit(start_one(&o, r.envp));
  /* Its own process group: the caller's SIGKILL of -pid must reach it and nothing of ours. */
  lead_group();
  become_child(&o, r.envp, 0);
}

/*
 * Starters (and served inits) that ended: kill what is left of each one's process group (an
 * action run without a PID namespace can leave processes there) while it is still unreaped, then
 * reap it. An unreaped child's pid cannot be reused, and so neither can the group it names:
 * after the reap, a SIGKILL of -pid could reach another action's new starter. Hence WNOWAIT
 * first. Run from the loop (its signalfd), not a handler: it reports on a served init's fd.
 */
static void reap_starters(void) {
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
    kill(-info.si_pid, SIGKILL);
    int status = 0;
    while (waitpid(info.si_pid, &status, 0) < 0 && errno == EINTR) {
    }
    served_init_ended(info.si_pid, status);
  }
}

int serve(void) {
  pid_t caller = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != caller) return 125;
  /* What each starter and init resets (reset_signals), read once: /proc/self/status per action. */
  remember_ignored_signals();
  /* Nothing the runner inherited without CLOEXEC is held here for the runner's life. */
  syscall(SYS_close_range, SERVE_FD + 1, ~0U, 0);
  /* Starters are reaped here, their group killed first (reap_starters); their caller learns their
   * end on their status pipe. SIGCHLD comes through a signalfd beside the socket: blocked (so
   * queued, whatever its disposition), and read in the loop. */
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) return 1;
  cleanup_close int children = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (children < 0) return 1;
  cleanup_close int own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  cleanup_free char *payload = malloc(MAX_REQUEST + 1);
  if (payload == NULL) return 1;
  for (;;) {
    struct pollfd ready[2] = {{.fd = SERVE_FD, .events = POLLIN}, {.fd = children, .events = POLLIN}};
    if (poll(ready, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (ready[1].revents & POLLIN) {
      struct signalfd_siginfo drained[16];
      while (read(children, drained, sizeof drained) > 0) {
      }
      reap_starters();
    }
    if (!(ready[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    struct iovec iov = {.iov_base = payload, .iov_len = MAX_REQUEST};
    union {
      struct cmsghdr header;
      char space[CMSG_SPACE(sizeof(int) * MAX_REQUEST_FDS)];
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(SERVE_FD, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    cleanup_request_fds struct request_fds given = {.count = 0};
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int k = 0; k < count; k++) {
        cleanup_close int fd = -1;
        memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
        if (given.count < MAX_REQUEST_FDS) given.fd[given.count++] = take_fd(&fd);
      }
    }
    /* A malformed request starts nothing; its status pipe closes with nothing said (the caller: lost). */
    if (given.count >= REQUEST_FDS && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && n > 0 && payload[n - 1] == '\0')
      start_request(payload, (size_t)n, given.fd, given.count, own_pidns);
  }
}
