#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/mman.h>
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
#include "raw.h"
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
 * Each request is unpacked into a block of memory of its own: its options, the copy of its
 * payload they point into, its argv and environment, its seccomp program, the fds it came with,
 * and two stacks, each above a guard page: the init's and its action's (until the exec). An init
 * that shares the server's memory (inits_share_memory) reads nothing else of the server's that
 * can change, and the block is its alone until the server reaps it. Blocks are kept for the next
 * requests (at most POOLED), so an action costs no mmap or munmap, whose TLB flushes reach every
 * core an init or action sharing this memory runs on; the pages they touched stay mapped.
 */
enum { STACK = 128 * 1024, DATA = 128 * 1024, POOLED = 64 };

struct init_block {
  struct options o;
  char **envp;
  struct sock_fprog program;
  int fds[MAX_REQUEST_FDS];
  int count;
  /* The mapping: its start and length (the stacks below this header, the data above it). */
  char *base;
  size_t length;
  struct init_block *next_free;
  char *init_stack;
  char data[] __attribute__((aligned(16)));
};

static struct init_block *free_blocks;
static int free_count;
static size_t page_size;

/* A block with at least ROOM bytes of data: from the pool where that is enough, else mapped. */
static struct init_block *get_block(size_t room) {
  if (room <= DATA && free_blocks != NULL) {
    struct init_block *b = free_blocks;
    free_blocks = b->next_free;
    free_count--;
    return b;
  }
  if (room < DATA) room = DATA;
  size_t header = (sizeof(struct init_block) + room + page_size - 1) / page_size * page_size;
  size_t length = 2 * (page_size + STACK) + header;
  /* NORESERVE: only what is touched counts (most of the data room never is). */
  char *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return NULL;
  /* Guard pages beneath each stack: an overflow faults instead of writing over what lies below. */
  if (mprotect(base, page_size, PROT_NONE) != 0 || mprotect(base + page_size + STACK, page_size, PROT_NONE) != 0) {
    munmap(base, length);
    return NULL;
  }
  struct init_block *b = (struct init_block *)(base + 2 * (page_size + STACK));
  b->base = base;
  b->length = length;
  b->init_stack = base + page_size;
  return b;
}

/* Back to the pool, or unmapped (a large one, or a full pool). NULL: nothing. */
static void release_block(struct init_block *b) {
  if (b == NULL) return;
  size_t room = b->length - 2 * (page_size + STACK) - sizeof *b;
  if (room >= DATA && room < DATA + page_size && free_count < POOLED) {
    b->next_free = free_blocks;
    free_blocks = b;
    free_count++;
    return;
  }
  munmap(b->base, b->length);
}

/*
 * The inits forked here (--pidns), each with its status fd, kept until it is reaped: an init
 * killed from outside with everything in its namespace (its cgroup's OOM group kill, a kill of
 * its cgroup) has no starter above it to say so, and this process, which reaps it, does ("K").
 */
struct served_init {
  pid_t pid;
  int status;
  struct init_block *block;
};
static struct served_init *served;
static size_t served_count, served_room;

/*
 * Keeps STATUS for PID's end, and the BLOCK it runs in (NULL for a forked init), until it is reaped;
 * 0, or -1 where memory ran out. The caller then kills the init: its block must not be reused
 * while it runs, nor its end go unreported.
 */
static int remember_init(pid_t pid, int status, struct init_block *block) {
  if (served_count == served_room) {
    size_t room = served_room ? served_room * 2 : 64;
    struct served_init *more = realloc(served, room * sizeof *more);
    if (more == NULL) return -1;
    served = more;
    served_room = room;
  }
  served[served_count++] = (struct served_init){.pid = pid, .status = status, .block = block};
  return 0;
}

/* A served init was reaped: report how it ended where it could not (report_init_end), forget it. */
static void served_init_ended(pid_t pid, int wait_status) {
  for (size_t k = 0; k < served_count; k++) {
    if (served[k].pid != pid) continue;
    report_init_end(served[k].status, wait_status);
    close(served[k].status);
    /* Reaped, the init has taken every process of its namespace with it (the kernel waits for
     * them before an init's end is reported), its action too: nobody runs in the block now. */
    release_block(served[k].block);
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

/*
 * The request (its payload of SIZE bytes, its COUNT fds) in a block: options parsed (*WHY: NULL,
 * or why they are malformed) and, if they are not, its seccomp program built or taken from the
 * cache (prepare_filter) and copied. NULL for a malformed payload or no memory.
 */
static struct init_block *unpack(const char *payload, size_t size, const int *fds, int count, const char **why) {
  const char *end = payload + size, *p = payload;
  long argc = strtol(p, NULL, 10);
  p += strlen(p) + 1;
  if (argc <= 0 || argc > 100000) return NULL;
  size_t strings = 0;
  for (const char *q = p; q < end; q += strlen(q) + 1) strings++;
  size_t pointers = (strings + 2) * sizeof(char *);
  size_t program = BPF_MAXINSNS * sizeof(struct sock_filter);
  struct init_block *b = get_block(pointers + program + size);
  if (b == NULL) return NULL;
  /* The data: pointers, then the program, then the payload's copy (each aligned as it needs). */
  char **argv = (char **)b->data;
  struct sock_filter *code = (struct sock_filter *)(b->data + pointers);
  char *text = (char *)code + program;
  memcpy(text, payload, size);
  p = text + (p - payload);
  end = text + size;
  long i = 0;
  for (; i < argc && p < end; i++, p += strlen(p) + 1) argv[i] = (char *)p;
  argv[i] = NULL;
  b->envp = argv + i + 1;
  size_t e = 0;
  for (; p < end; e++, p += strlen(p) + 1) b->envp[e] = (char *)p;
  b->envp[e] = NULL;
  if (i < argc) {
    release_block(b);
    return NULL;
  }
  memcpy(b->fds, fds, sizeof(int) * (size_t)count);
  b->count = count;
  *why = parse_options((int)argc, argv, &b->o);
  if (*why != NULL) return b;
  /* Here, before the clone or fork: built once per set of options, kept for the next request. */
  prepare_filter(&b->o);
  if (b->o.filter != NULL) {
    b->program = (struct sock_fprog){.len = b->o.filter->len, .filter = code};
    memcpy(code, b->o.filter->filter, sizeof *code * b->o.filter->len);
    b->o.filter = &b->program;
  }
  return b;
}

/* The fds become 0 to COUNT-1, by way of copies above them so that none clobbers another. */
static void take_fds(const int *fds, int count) {
  int high[MAX_REQUEST_FDS];
  for (int i = 0; i < count; i++)
    if ((high[i] = RSI(SYS_fcntl, fds[i], F_DUPFD, MAX_REQUEST_FDS + 16)) < 0) raw_exit(126);
  for (int i = 0; i < count; i++)
    if (RS(SYS_dup3, high[i], i, 0) != i) raw_exit(126);
  RS(SYS_close_range, count, ~0U, 0);
}

/*
 * Whether each init shares this process's memory (CLONE_VM, as bench/limit.c clones its own)
 * rather than being forked: a fork copies this process's page tables, and every page either side
 * writes afterwards faults and is copied, with TLB flushes across cores; forking alone cost 0.54
 * ms here, and made the limit's action 1.35 times as long and cost 0.36 of its throughput
 * (bench/RESULTS.md). What sharing asks of the rest: the init and its action read nothing of
 * ours that changes (their block, above) and never use errno (raw.h). And what it asks of the
 * kernel's OOM killer, which kills every process of a memory with the one it chose, and of an
 * action's cgroup's OOM group kill (memory.oom.group) alike: such an init must never be in an
 * action's cgroups, or an action that filled its memory limit would take this server and every
 * other action with it. So an init that shares our memory stays in our cgroups; its action is
 * born into its v2 cgroup (the init's clone3), and joins the v1 trees, sets its oom_score_adj
 * and makes its cgroup namespace itself, before anything else it does (start_action).
 */
static int inits_share_memory;

/*
 * Dumpability is the memory's too: every init makes itself not dumpable (run_init) so that its
 * action cannot read or trace it, and that makes this process and every other init so. The
 * caller then opens an init's /proc/PID/ns/pid before its gate (to mount proc for its namespace)
 * only with CAP_SYS_PTRACE, which it has as root on a host but not in a container that drops it
 * (as the worker pod's does): inits share our memory only where we, started by the caller with
 * its capabilities, have it. We are not dumpable from the start, so that that holds for the first
 * init as for the rest.
 */
enum { CAP_SYS_PTRACE_ = 19 };

static int share_memory_with_inits(void) {
#if defined(RAW_CLONE3)
  struct cap_header_ header = {.version = LINUX_CAPABILITY_VERSION_3_, .pid = 0};
  struct cap_data_ data[2];
  if (syscall(SYS_capget, &header, data) != 0 || !(data[0].effective & (1u << CAP_SYS_PTRACE_))) return 0;
  return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
#else
  return 0;
#endif
}

#if defined(RAW_CLONE3)
/* A served init that shares our memory, from its clone: the request's fds as its own 0 to N-1,
 * its own process group (the caller's SIGKILL of -pid must reach it and nothing of ours), then as
 * start_one's child. Nothing here may call glibc but what raw.h allows. */
static int shared_init_main(void *arg) {
  struct init_block *b = arg;
  take_fds(b->fds, b->count);
  if (lead_group() != 0) raw_exit(126);
  become_child(&b->o, b->envp, 0);
}

/* The init of B's request, sharing our memory, in a new PID namespace and in our cgroups (the
 * comment above inits_share_memory): its pid, or -errno. */
static pid_t clone_init(struct init_block *b) {
  b->o.shares_memory = 1;
  b->o.action_stack = b->init_stack + STACK + page_size;
  b->o.action_stack_size = STACK;
  struct clone_args_ args = {
      .flags = CLONE_VM | CLONE_NEWPID, .exit_signal = SIGCHLD, .stack = (uint64_t)b->init_stack, .stack_size = STACK};
  int born;
  return (pid_t)clone_sharing(&args, &born, shared_init_main, b);
}
#endif

/*
 * One request, its options parsed here, once; what to start follows from them.
 *
 * With --pidns the server starts the action's init itself, into a PID namespace made for it,
 * instead of forking a starter that does: one process (a fork, an exit, a wait: about 0.4 ms
 * here) fewer per action. The init reports the action's end as always; the server names it in the
 * S and P lines (it is what the caller signals), and it is reaped here (reap_starters). Where
 * inits share our memory it is cloned so (clone_init), else forked (fork_child). Otherwise the
 * server forks a starter, which runs start_one as the command line's does.
 */
static void start_request(const char *payload, size_t size, const int *fds, int count, int own_pidns) {
  const char *why = NULL;
  struct init_block *b = unpack(payload, size, fds, count, &why);
  if (b == NULL) return;
  struct options *o = &b->o;
  int init_here = o->pidns && own_pidns >= 0;
  /* An fd the options name but the request lacks: the child's join fails on it (EBADF). */
  int cgroup = why == NULL && o->cgroup >= 0 && o->cgroup < count ? fds[o->cgroup] : -1;
#if defined(RAW_CLONE3)
  if (init_here && why == NULL && inits_share_memory) {
    pid_t pid = clone_init(b);
    if (pid < 0) {
      report_failed(fds[STATUS_FD], STEP_fork, -pid);
      release_block(b);
      return;
    }
    report_served(fds[STATUS_FD], pid);
    int status = fcntl(fds[STATUS_FD], F_DUPFD_CLOEXEC, 0);
    if (status < 0 || remember_init(pid, status, b) != 0) {
      /* Its block would be reused while it runs, or its end go unreported: it must not run. The
       * caller reads its status pipe's end without an "X": the action was lost. */
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
      if (status >= 0) close(status);
      release_block(b);
    }
    return;
  }
#endif
  pid_t pid = init_here ? fork_child(o, fds[STATUS_FD], own_pidns, cgroup) : fork();
  if (pid != 0) {
    /* The child has its own copy of the block. */
    release_block(b);
    if (!init_here || pid < 0) return;
    report_served(fds[STATUS_FD], pid);
    int status = fcntl(fds[STATUS_FD], F_DUPFD_CLOEXEC, 0);
    if (status >= 0 && remember_init(pid, status, NULL) != 0) close(status);
    return;
  }
  /* SIGCHLD, blocked here for the server's signalfd, is unblocked by lead_group (reset_signals)
   * in a starter and in an init, which wait for their own children. */
  take_fds(b->fds, b->count);
  /* A malformed command line is told on the request's stderr by the process forked for it, as
   * when executed (the server never writes to a caller's fd but a status line); with --pidns
   * among the options read before the fault, that process is the init, as before parsing. */
  if (why != NULL) usage(why);
  if (!init_here) _exit(start_one(o, b->envp));
  /* Its own process group: the caller's SIGKILL of -pid must reach it and nothing of ours. */
  lead_group();
  become_child(o, b->envp, 0);
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
  page_size = (size_t)sysconf(_SC_PAGESIZE);
  inits_share_memory = share_memory_with_inits();
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
