#define _GNU_SOURCE
#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "options.h"
#include "raw.h"
#include "kernel.h"
#include "signals.h"

/*
 * Why: the kernel counts inotify instances (fs.inotify.max_user_instances, 128 by default) per
 * user namespace and *effective uid of the creator*, and watches (max_user_watches) against the
 * counter of the instance they are added to (fs/notify/inotify/inotify_user.c: inotify_new_group
 * charges inc_ucount(current_user_ns(), current_euid(), …); inotify_new_watch charges the group's
 * ucounts). An action runs as uid 0 of the host's user namespace, or as runCommandsAs's one uid:
 * without this, an action as root could take the host's root services' last instance, and
 * actions of one uid each other's.
 *
 * How: the action's seccomp filter (filter.c: mountat's own, whose opening instructions these are)
 * hands the native inotify_init and inotify_init1 to a broker (SECCOMP_RET_USER_NOTIF); the
 * action loads it last, with SECCOMP_FILTER_FLAG_NEW_LISTENER, and sends the listener to its init
 * before exec. The broker is a process of the action's PID namespace forked by its
 * init on the first such call, with every uid and gid set to a uid of the action's own (below) and
 * no capability at all: it creates the instance with the requested flags, so the kernel charges
 * that uid, and installs it in the calling thread as the call's result (SECCOMP_IOCTL_NOTIF_ADDFD
 * with SECCOMP_ADDFD_FLAG_SEND: fd and return value at once). The instance is empty: every watch is
 * added by the action itself, with its own permission checks, and is charged to the instance's uid.
 *
 * Why a process and not the init's own euid changed around the call: every change of euid
 * (commit_creds) clears the parent-death signal and resets dumpability to fs.suid_dumpable; with
 * suid_dumpable 1, a root action could attach to the init (which holds every capability) in the
 * moment after its euid is back to 0. The broker never holds a privilege while it serves.
 *
 * The uid: the low 20 bits are the inode number of the action's PID namespace less 0xF0000000
 * (proc_alloc_inum hands namespaces 0xF0000000 + the lowest free index of one ida shared by every
 * namespace of the host: unique among live namespaces, so among live actions, whichever runner
 * started them), bits 20-30 random, bit 31 set: 2^31…2^32-2, the range systemd's UIDS-GIDS.md
 * leaves to nobody ("HIC SVNT LEONES"). The random bits matter because an action can send an
 * instance out over a UNIX socket: it then outlives the namespace, still charged to the uid, and
 * the lowest-free inode numbers come back for the very next actions; a receiver that collected
 * instances could otherwise starve later actions of the same number. Where there is no such uid
 * (the namespace's number is unknown or too large, or the starter runs in a user namespace that
 * does not map it), the broker lets each call through (SECCOMP_USER_NOTIF_FLAG_CONTINUE): charged
 * to the action's uid, as without a broker.
 *
 * The broker never reads the action's memory (the flags are in the notification), so there is no
 * window for SECCOMP_IOCTL_NOTIF_ID_VALID to close: a notification whose thread went away (or was
 * interrupted) is refused by ADDFD itself with ENOENT, and the instance made for it is closed.
 */

/* Where namespace inode numbers start, how many of their low bits the uid keeps, and its range's start. */
#define PROC_DYNAMIC_FIRST 0xF0000000u
#define INUM_BITS 20
#define CHARGE_BASE 0x80000000u
/* The broker's exit status when it has no uid of its own: the init then lets calls through itself. */
enum { BROKER_NO_UID = 3 };

/* Close *FD if open, and forget it. */
static void drop(int *fd) {
  close_fd(fd);
  *fd = -1;
}

/* The channel, o->channel: [0] the init's end, [1] the action's (until it has sent its listener). */
int broker_channel(struct options *o) {
  return RSI(SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, o->channel);
}

/* ---- the action's side ---- */

/* FD to the init, with SCM_RIGHTS. */
static int send_fd(int socket, int fd) {
  union {
    struct cmsghdr header;
    char space[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof control);
  char byte = 'L';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  long rc = RS(SYS_sendmsg, socket, &msg, MSG_NOSIGNAL);
  return rc == 1 ? 0 : rc < 0 ? (int)rc : -EIO;
}

int broker_wanted(const struct options *o) {
  return o->channel[1] >= 0;
}

int broker_send(const struct options *o, int listener) {
  /* Copies, not take_fd: the action shares the init's memory until its exec (starter.c), and the
   * init still needs o->channel as it is. The fds are the action's own. */
  cleanup_close int own = o->channel[1];
  cleanup_close int held = listener;
  if (o->channel[0] >= 0) RS(SYS_close, o->channel[0]);
  /* No listener (no user notification, or EBUSY: filter.c): the init reads EOF, and runs no broker. */
  if (own < 0 || held < 0) return 0;
  /* The filter is loaded: its calls would wait for an answer nobody can give. The listener must
   * reach the init, or the action must not start. */
  return send_fd(own, held);
}

/* ---- the broker ---- */

/* The inode number of our PID namespace: through a pidfd (6.11+, no /proc needed), else /proc. 0 if unknown. */
static uint32_t pid_namespace_inode(void) {
  struct stat st;
  cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
  cleanup_close int ns = pidfd < 0 ? -1 : ioctl(pidfd, PIDFD_GET_PID_NAMESPACE_, 0);
  if (ns >= 0 && fstat(ns, &st) == 0) return (uint32_t)st.st_ino;
  if (stat("/proc/self/ns/pid", &st) == 0) return (uint32_t)st.st_ino;
  return 0;
}

/* The uid the action's instances are charged to (the comment at the top), or (uid_t)-1. */
static uid_t charge_uid(void) {
  uint32_t inum = pid_namespace_inode();
  if (inum < PROC_DYNAMIC_FIRST || inum - PROC_DYNAMIC_FIRST >= (1u << INUM_BITS)) return (uid_t)-1;
  /* Without randomness the uid is still unique, only predictable. */
  uint32_t random = 0;
  if (getrandom(&random, sizeof random, GRND_NONBLOCK) != sizeof random) random = 0;
  uint32_t uid = CHARGE_BASE | (random & 0x7FFu) << INUM_BITS | (inum - PROC_DYNAMIC_FIRST);
  /* (uid_t)-1 means "unchanged" to setresuid, and (uid_t)-2 was nfsnobody on some systems. */
  if (uid >= 0xFFFFFFFEu) uid &= ~(1u << 30);
  return (uid_t)uid;
}

/* Every uid and gid that uid, no supplementary group, no capability (a change from uid 0 to
 * all-nonzero clears them), not dumpable, no new privileges, and dead with the init. */
static int become(uid_t uid) {
  if (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) return -1;
  /* The change of credentials reset both (commit_creds): set them again. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return -1;
  if (getppid() != 1) _exit(0);
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void answer_error(int listener, uint64_t id, int error) {
  struct seccomp_notif_resp resp = {.id = id, .error = -error};
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

static void answer_continue(int listener, uint64_t id) {
  struct seccomp_notif_resp resp = {.id = id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE};
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* Whether the call is inotify_init1 (1), inotify_init (0), or neither (-1): the filter sends only
 * the native ABI's (filter.c). */
static int with_flags(const struct seccomp_notif *req) {
  if (req->data.arch != seccomp_arch_native()) return -1;
  if (req->data.nr == SYS_inotify_init1) return 1;
#if defined(SYS_inotify_init)
  if (req->data.nr == SYS_inotify_init) return 0;
#endif
  return -1;
}

/* One call: an instance made here (charged to our uid) becomes the calling thread's result. */
static void answer(int listener, const struct seccomp_notif *req) {
  int call = with_flags(req);
  /* Only the filter's calls come here; another would be a fault of ours, shown, never let through. */
  if (call < 0) {
    answer_error(listener, req->id, ENOSYS);
    return;
  }
  /* inotify_init1 checks its flags itself (EINVAL for any but IN_CLOEXEC and IN_NONBLOCK). */
  int flags = call ? (int)req->data.args[0] : 0;
  cleanup_close int fd = inotify_init1(flags | IN_CLOEXEC);
  if (fd < 0) {
    answer_error(listener, req->id, errno);
    return;
  }
  struct seccomp_notif_addfd addfd = {
      .id = req->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd, .newfd_flags = (flags & IN_CLOEXEC) ? O_CLOEXEC : 0};
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) >= 0 || errno == ENOENT) return;
  /* Before 5.14 the kernel has no SECCOMP_ADDFD_FLAG_SEND: let the call through, as without a
   * broker. Any other failure (EMFILE: the thread's fd limit) is the call's result. */
  if (errno == EINVAL) answer_continue(listener, req->id);
  else answer_error(listener, req->id, errno);
}

/* The broker process: its uid, then answers until the namespace ends. */
static void run_broker(int listener) __attribute__((noreturn));
static void run_broker(int listener) {
  /* Only the listener: not the status fd, not the channel. */
  if (listener > 0) syscall(SYS_close_range, 0, listener - 1, 0);
  syscall(SYS_close_range, listener + 1, ~0U, 0);
  default_signals();
  signal(SIGCHLD, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  uid_t uid = charge_uid();
  if (uid == (uid_t)-1 || become(uid) != 0) _exit(BROKER_NO_UID);
  for (;;) {
    struct seccomp_notif req;
    /* The kernel refuses a request that is not zeroed. */
    memset(&req, 0, sizeof req);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
      /* ENOENT: the caller went away between the wake-up and the read. */
      if (errno == EINTR || errno == ENOENT) continue;
      _exit(1);
    }
    answer(listener, &req);
  }
}

/* ---- the init's side ---- */

/* Does nothing: only interrupts ppoll, which is when SIGCHLD is unblocked. */
static void child_ended(int sig) {
  (void)sig;
}

/* The listener from the channel (MSG_CMSG_CLOEXEC), or -1: the action sent none, or not one fd. */
static int receive_listener(int socket) {
  /* rsys here and in the loop below: the init may share the server's memory (raw.h). */
  union {
    struct cmsghdr header;
    char space[CMSG_SPACE(sizeof(int) * 2)];
  } control;
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
  ssize_t got;
  while ((got = RS(SYS_recvmsg, socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) == -EINTR) {
  }
  int fd = -1, count = 0;
  for (struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++, count++) {
      cleanup_close int given = -1;
      memcpy(&given, CMSG_DATA(c) + k * sizeof(int), sizeof given);
      if (count == 0) fd = take_fd(&given);
    }
  }
  if (count != 1) drop(&fd);
  return count == 1 ? fd : -1;
}

/* What the init does with a call while no broker runs. */
enum without_broker {
  FORK_BROKER,
  /* The broker found no uid of its own: the call goes through as the action's, as without a broker. */
  LET_THROUGH,
  /* The broker ended on an error of its own: the call fails, rather than be charged to the action's uid. */
  REFUSE,
};

/* One call, answered by the init itself. Never blocks: poll said one is pending (and a caller
 * that went away meanwhile gives ENOENT, not a wait). */
static void answer_here(int listener, enum without_broker how) {
  struct seccomp_notif req;
  memset(&req, 0, sizeof req);
  if (RS(SYS_ioctl, listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;
  struct seccomp_notif_resp resp = {.id = req.id};
  if (how == LET_THROUGH) resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  else resp.error = -ENOMEM;
  RS(SYS_ioctl, listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/*
 * A fork by the kernel's call, not glibc's (whose bookkeeping lives in memory this init may share
 * with the server): the broker has a copy of that memory of its own, and runs with glibc's calls
 * there. An init that shares the server's memory is in none of the action's cgroups (server.c):
 * its broker is born into the action's v2 one, as the action was, not charged to the runner's.
 */
static pid_t fork_broker(const struct options *o) {
  int into = o->shares_memory && o->cgroup >= 0;
  struct clone_args_ args = {.flags = into ? CLONE_INTO_CGROUP_ : 0, .exit_signal = SIGCHLD, .cgroup = (uint64_t)(into ? o->cgroup : 0)};
  long pid = into ? RS(SYS_clone3, &args, sizeof args) : -ENOSYS;
  /* clone3 refused (a container's seccomp profile), or none asked for: a plain fork. */
  if (pid == -ENOSYS || pid == -E2BIG) pid = RS(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  return (pid_t)pid;
}

/*
 * The init's loop: SIGCHLD is blocked except inside ppoll, so a child that ends between the reap
 * and the ppoll interrupts the ppoll instead of being missed. The listener is watched only while
 * no broker runs: the first call (or the first after the broker was killed: a root action with
 * CAP_KILL can) forks one. The init keeps a copy, so that a broker's death leaves calls waiting
 * for the next broker rather than failing (with ENOSYS, as once no listener is left).
 */
void broker_wait(struct options *o, pid_t action, int *status, struct rusage *ru) {
  drop(&o->channel[1]);
  cleanup_close int socket = take_fd(&o->channel[0]);
  cleanup_close int listener = -1;
  pid_t broker = 0;
  enum without_broker how = FORK_BROKER;
  sigset_t chld, during_poll;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &during_poll);
  sigdelset(&during_poll, SIGCHLD);
  struct sigaction sa = {.sa_handler = child_ended, .sa_flags = SA_NOCLDSTOP};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) {
    int child_status;
    struct rusage child_ru;
    pid_t got;
    while ((got = (pid_t)RS(SYS_wait4, -1, &child_status, WNOHANG, &child_ru)) > 0) {
      if (got == action) {
        *status = child_status;
        *ru = child_ru;
        return;
      }
      if (got != broker) continue;
      broker = 0;
      if (WIFEXITED(child_status)) how = WEXITSTATUS(child_status) == BROKER_NO_UID ? LET_THROUGH : REFUSE;
    }
    if (got < 0 && got != -EINTR) raw_exit(1);
    struct pollfd fds[2];
    nfds_t n = 0;
    if (socket >= 0) fds[n++] = (struct pollfd){.fd = socket, .events = POLLIN};
    if (listener >= 0 && broker == 0) fds[n++] = (struct pollfd){.fd = listener, .events = POLLIN};
    /* The kernel's sigset is 8 bytes (glibc's is larger; its first 8 bytes are the kernel's). */
    if (RS(SYS_ppoll, fds, n, NULL, &during_poll, 8) < 0) continue;
    for (nfds_t i = 0; i < n; i++) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == socket) {
        /* One message: the listener, or nothing (EOF: no filter). Never read again. */
        listener = receive_listener(socket);
        drop(&socket);
      } else if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
        /* No task uses the filter any more. */
        drop(&listener);
      } else if (how != FORK_BROKER) {
        answer_here(listener, how);
      } else if ((broker = fork_broker(o)) == 0) {
        run_broker(listener);
      } else if (broker < 0) {
        /* No process to spare (a pids limit the action filled): this call fails, the next may
         * fork again. Never let it through as the action: that would be charged to its uid. */
        broker = 0;
        answer_here(listener, REFUSE);
      }
    }
  }
}
