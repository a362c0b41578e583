/*
 * The C reference for the benchmark: one "cycle" of mountat's default plan, making the same
 * system calls, in the same order, as the engine does (bench/check-syscalls.sh diffs
 * `strace -f` of both, and of bench/raw-koffi.mjs, on every benchmark run), so that the
 * difference between the two is the cost of the engine's
 * JavaScript and koffi, not of different kernel work. The default plan's proc and sysfs are
 * hardened, so the covers are mirrored here too (the choice made for the benchmark: the figures
 * are those of the plan every action gets; bench/engine.mjs adds one engine-only figure with
 * hardened: false on proc for what its covers cost). 73 calls per cycle without covers (this
 * comment said 64 before the at-target check of each entry added 3); with them, 8 more per
 * read-only cover or masked file present, 10 per masked directory present, 1 per name absent:
 * 165 on a kernel whose proc has 4 + 4 + 1 of them and lacks the other 7, and whose sysfs has
 * firmware but no powercap, as the test machine's (6.18):
 *
 *   attach: statx(root, "", EMPTY_PATH, INO|TYPE); per entry (proc, sys, tmp):
 *     openat2(root, target, O_PATH|O_DIRECTORY|O_CLOEXEC, IN_ROOT|NO_SYMLINKS|NO_MAGICLINKS|
 *     NO_XDEV) -> ENOENT; mkdirat 0755; openat2 again; statx(fd, INO); fsopen;
 *     fsconfig source=<type>; fsconfig each option; FSCONFIG_CMD_CREATE; fsmount; close(fsfd);
 *     statx MNT_ID; statx MNT_ID_UNIQUE; move_mount(mfd -> target fd); openat2(root, target) of the
 *     topmost mount and statx MNT_ID_UNIQUE on it (the mount is at its target); close of that fd;
 *     for proc and sys, the covers (src/mounts/cover.ts): per name, openat2(mfd, name, O_PATH[
 *     |O_DIRECTORY], BENEATH|NO_SYMLINKS|NO_MAGICLINKS|NO_XDEV), ENOENT skips it; a read-only
 *     cover is open_tree(that fd, "", CLONE|AT_EMPTY_PATH) + mount_setattr, a masked file
 *     open_tree("/dev/null") + mount_setattr, a masked directory fsopen tmpfs, CMD_CREATE,
 *     fsmount, close(fsfd); then move_mount onto the fd, statx MNT_ID, statx MNT_ID_UNIQUE,
 *     close ×2; then close of the mount and target fds.
 *   detach: statx(root) for the identity; per entry in reverse:
 *     openat2(root, target, O_PATH|O_NOFOLLOW|O_CLOEXEC, IN_ROOT|NO_SYMLINKS|NO_MAGICLINKS)
 *     (the topmost mount); one statx(MNT_ID_UNIQUE) to check it is ours; umount2 of
 *     /proc/thread-self/fd/N with MNT_DETACH; close; statx(root, name, AT_SYMLINK_NOFOLLOW)
 *     to compare the inode; unlinkat(root, name, AT_REMOVEDIR).
 *
 * usage: cycle ROOT CYCLES REPS WARMUP
 *   Runs WARMUP untimed cycles, then REPS timed runs of CYCLES cycles each, and prints one
 *   line per run with the fields of bench/measure.mjs, per cycle: wall µs (CLOCK_MONOTONIC),
 *   user and sys µs and voluntary and involuntary context switches (getrusage RUSAGE_SELF),
 *   and this thread's on-CPU and run-queue µs (/proc/thread-self/schedstat): the same figures
 *   the benchmark records for the engine and the raw koffi floor. Every return value is
 *   checked; any failure prints what failed and exits 1.
 *
 * Needs glibc >= 2.36 (fsopen/fsconfig/fsmount/move_mount wrappers); openat2 has no glibc
 * wrapper there, so it goes through syscall(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "covers.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
/* Linux 6.8+; newer than this glibc's and linux-libc-dev's headers. */
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif

/* The same lookup rules as the engine's src/mounts/resolve.ts. */
#define BENEATH (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
/* No O_NOFOLLOW, as resolve.ts: RESOLVE_NO_SYMLINKS already refuses a symlink (ELOOP). */
#define DIR_PATH (O_PATH | O_DIRECTORY | O_CLOEXEC)

struct entry {
  const char *target; /* one component beneath the root, as in the default plan */
  const char *type;
  const char *options[2][2]; /* key, value; unused slots are NULL */
  unsigned int attrs;
  const struct cover *covers; /* proc and sys: cover it as src/mounts/cover.ts does */
  size_t ncovers;
};

/* The covers: bench/covers.h (src/mounts/covers.ts). */
#define COVERS(list) list, sizeof list / sizeof list[0]

/* defaultPlan(): the kinds, options and attributes of src/mounts/defaults.ts. */
static const struct entry plan[] = {
    {"proc", "proc", {{NULL, NULL}}, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, COVERS(proc_covers)},
    {"sys", "sysfs", {{NULL, NULL}}, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, COVERS(sysfs_covers)},
    {"tmp", "tmpfs", {{"mode", "1777"}, {"size", "512m"}}, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, NULL, 0},
};
#define COVER_READONLY (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
#define COVER_MASKED_FILE (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)
#define COVER_MASKED_DIR (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
#define BENEATH_MOUNT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define NENTRIES (sizeof plan / sizeof plan[0])

/* What attach records per entry, for detach to check it unmounts only what it made. */
struct attached {
  uint64_t mnt_id;
  uint64_t unique_id; /* 0 when the kernel lacks STATX_MNT_ID_UNIQUE */
  int created;
  uint64_t dir_ino;
};

static void die(const char *call, const char *what) {
  fprintf(stderr, "cycle: %s %s: %s\n", call, what, strerror(errno));
  exit(1);
}

static void fail(const char *message, const char *what) {
  fprintf(stderr, "cycle: %s: %s\n", what, message);
  exit(1);
}

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {.flags = flags, .mode = 0, .resolve = resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static void statx_(int fd, const char *path, int flags, unsigned int mask, struct statx *st, const char *what) {
  if (statx(fd, path, flags, mask, st) < 0) die("statx", what);
}

/* Both mount ids of the mount an fd is on, read as the engine's identity.ts does (two calls). */
static void mount_ids(int fd, uint64_t *id, uint64_t *unique, const char *what) {
  struct statx st;
  statx_(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &st, what);
  *id = st.stx_mnt_id;
  statx_(fd, "", AT_EMPTY_PATH, STATX_MNT_ID_UNIQUE, &st, what);
  *unique = (st.stx_mask & STATX_MNT_ID_UNIQUE) ? st.stx_mnt_id : 0;
}

/* The root's device and inode, which detach compares with attach's (rootIdentityOf). */
static void root_identity(int root, dev_t *dev, uint64_t *ino) {
  struct statx st;
  statx_(root, "", AT_EMPTY_PATH, STATX_INO | STATX_TYPE, &st, "root");
  if (!S_ISDIR(st.stx_mode)) fail("not a directory", "root");
  *dev = makedev(st.stx_dev_major, st.stx_dev_minor);
  *ino = st.stx_ino;
}

/* resolveMountpoint(): the target fd, creating the directory when it is missing. */
static int resolve_target(int root, const struct entry *e, struct attached *a) {
  int fd = openat2_(root, e->target, DIR_PATH, BENEATH | RESOLVE_NO_XDEV);
  a->created = 0;
  if (fd >= 0) return fd;
  if (errno != ENOENT) die("openat2", e->target);
  /* A one-component target was just looked up whole: straight to mkdirat. As resolve.ts, an
   * EEXIST (a racing creator) is tolerated, but then the directory is not ours to remove. */
  int made = mkdirat(root, e->target, 0755) == 0;
  if (!made && errno != EEXIST) die("mkdirat", e->target);
  fd = openat2_(root, e->target, DIR_PATH, BENEATH | RESOLVE_NO_XDEV);
  if (fd < 0) die("openat2", e->target);
  if (made) {
    struct statx st;
    statx_(fd, "", AT_EMPTY_PATH, STATX_INO, &st, e->target);
    a->created = 1;
    a->dir_ino = st.stx_ino;
  }
  return fd;
}

static int is_our_mount(int fd, const struct attached *a, const char *what);

static void set_attrs(int tree, unsigned int attrs, const char *what) {
  struct mount_attr attr = {.attr_set = attrs, .attr_clr = 0, .propagation = MS_PRIVATE, .userns_fd = 0};
  if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) die("mount_setattr", what);
}

/* coverMount(): each name resolved beneath the proc or sysfs mount fd, skipped when absent, covered. */
static void cover_mount(int mfd, const struct cover *covers, size_t ncovers) {
  for (size_t i = 0; i < ncovers; i++) {
    const struct cover *c = &covers[i];
    int at = openat2_(mfd, c->name, O_PATH | O_CLOEXEC | (c->directory ? O_DIRECTORY : 0), BENEATH_MOUNT);
    if (at < 0) {
      if (errno == ENOENT) continue;
      die("openat2", c->name);
    }
    int m;
    if (c->readonly) {
      m = open_tree(at, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
      if (m < 0) die("open_tree", c->name);
      set_attrs(m, COVER_READONLY, c->name);
    } else if (!c->directory) {
      m = open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (m < 0) die("open_tree", "/dev/null");
      set_attrs(m, COVER_MASKED_FILE, c->name);
    } else {
      int fsfd = fsopen("tmpfs", FSOPEN_CLOEXEC);
      if (fsfd < 0) die("fsopen", c->name);
      if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) die("fsconfig create", c->name);
      m = fsmount(fsfd, FSMOUNT_CLOEXEC, COVER_MASKED_DIR);
      if (m < 0) die("fsmount", c->name);
      if (close(fsfd) < 0) die("close", "cover fsfd");
    }
    if (move_mount(m, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) die("move_mount", c->name);
    uint64_t id, unique;
    mount_ids(m, &id, &unique, c->name);
    if (close(m) < 0) die("close", "cover fd");
    if (close(at) < 0) die("close", "cover target fd");
  }
}

/* newFilesystem() + moveMountOntoFd() + mountIdentityOf() + the check that the mount is at its
 * target (attach.ts mountIsAtTarget: the topmost mount there is ours) for one entry. */
static void attach_one(int root, const struct entry *e, struct attached *a) {
  int target = resolve_target(root, e, a);
  int fsfd = fsopen(e->type, FSOPEN_CLOEXEC);
  if (fsfd < 0) die("fsopen", e->type);
  if (fsconfig(fsfd, FSCONFIG_SET_STRING, "source", e->type, 0) < 0) die("fsconfig source", e->target);
  for (size_t i = 0; i < 2 && e->options[i][0] != NULL; i++)
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, e->options[i][0], e->options[i][1], 0) < 0) die("fsconfig", e->options[i][0]);
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) die("fsconfig create", e->target);
  int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, e->attrs);
  if (mfd < 0) die("fsmount", e->target);
  if (close(fsfd) < 0) die("close", "fsfd");
  /* The ids before move_mount, as attach.ts reads them (a mount keeps its ids when moved). */
  mount_ids(mfd, &a->mnt_id, &a->unique_id, e->target);
  if (move_mount(mfd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) die("move_mount", e->target);
  int now = openat2_(root, e->target, O_PATH | O_NOFOLLOW | O_CLOEXEC, BENEATH);
  if (now < 0) die("openat2", e->target);
  if (!is_our_mount(now, a, e->target)) fail("not at its target after move_mount", e->target);
  if (close(now) < 0) die("close", "check fd");
  if (e->covers) cover_mount(mfd, e->covers, e->ncovers);
  if (close(mfd) < 0) die("close", "mount fd");
  if (close(target) < 0) die("close", "target fd");
}

/* isOurMount(): one statx, by the unique id when the record has one and the kernel gives it. */
static int is_our_mount(int fd, const struct attached *a, const char *what) {
  struct statx st;
  if (a->unique_id) {
    statx_(fd, "", AT_EMPTY_PATH, STATX_MNT_ID_UNIQUE, &st, what);
    if (st.stx_mask & STATX_MNT_ID_UNIQUE) return st.stx_mnt_id == a->unique_id;
  }
  statx_(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &st, what);
  return st.stx_mnt_id == a->mnt_id;
}

/* detachOne() + removeCreatedDirs() for one entry; a top-level dir's parent is the root fd. */
static void detach_one(int root, const struct entry *e, const struct attached *a) {
  int top = openat2_(root, e->target, O_PATH | O_NOFOLLOW | O_CLOEXEC, BENEATH);
  if (top < 0) die("openat2", e->target);
  if (!is_our_mount(top, a, e->target)) fail("not the mount attach made", e->target);
  char path[64];
  snprintf(path, sizeof path, "/proc/thread-self/fd/%d", top);
  if (umount2(path, MNT_DETACH) < 0) die("umount2", e->target);
  if (close(top) < 0) die("close", "top fd");
  if (!a->created) return;
  struct statx st;
  statx_(root, e->target, AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_TYPE, &st, e->target);
  if (!S_ISDIR(st.stx_mode) || st.stx_ino != a->dir_ino) fail("replaced by another directory", e->target);
  if (unlinkat(root, e->target, AT_REMOVEDIR) < 0) die("unlinkat", e->target);
}

static void cycle(int root) {
  struct attached attached[NENTRIES];
  dev_t dev, dev2;
  uint64_t ino, ino2;
  root_identity(root, &dev, &ino);
  for (size_t i = 0; i < NENTRIES; i++) attach_one(root, &plan[i], &attached[i]);
  root_identity(root, &dev2, &ino2);
  if (dev != dev2 || ino != ino2) fail("root changed between attach and detach", "root");
  for (size_t i = NENTRIES; i-- > 0;) detach_one(root, &plan[i], &attached[i]);
}

static double now_us(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) die("clock_gettime", "MONOTONIC");
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double tv_us(struct timeval tv) {
  return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

/* CPU time and context switches of the whole process, as Node's process.resourceUsage(). */
static struct rusage usage(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) < 0) die("getrusage", "self");
  return ru;
}

/* This thread's on-CPU and run-queue-wait times so far, in µs: the first two schedstat fields (ns). */
static void thread_sched(double *on_cpu, double *run_queue) {
  FILE *f = fopen("/proc/thread-self/schedstat", "r");
  unsigned long long on = 0, wait = 0;
  if (f == NULL) die("fopen", "/proc/thread-self/schedstat");
  if (fscanf(f, "%llu %llu", &on, &wait) != 2) fail("unreadable", "/proc/thread-self/schedstat");
  fclose(f);
  *on_cpu = (double)on / 1e3;
  *run_queue = (double)wait / 1e3;
}

static long positive(const char *text, const char *name) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) fail("not a non-negative integer", name);
  return value;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: cycle ROOT CYCLES REPS WARMUP\n");
    return 2;
  }
  long cycles = positive(argv[2], "CYCLES"), reps = positive(argv[3], "REPS"), warmup = positive(argv[4], "WARMUP");
  if (cycles == 0) fail("must be at least 1", "CYCLES");
  /* Opened like the engine's openRoot(): a plain path, once, outside the timed loop. */
  int root = openat2_(AT_FDCWD, argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (root < 0) die("openat2", argv[1]);
  for (long i = 0; i < warmup; i++) cycle(root);
  for (long r = 0; r < reps; r++) {
    double on0, wait0, on1, wait1;
    thread_sched(&on0, &wait0);
    struct rusage before = usage();
    double start = now_us();
    for (long i = 0; i < cycles; i++) cycle(root);
    double elapsed = now_us() - start;
    struct rusage after = usage();
    thread_sched(&on1, &wait1);
    double n = (double)cycles;
    printf("%.3f %.3f %.3f %.4f %.4f %.3f %.3f\n", elapsed / n, (tv_us(after.ru_utime) - tv_us(before.ru_utime)) / n,
           (tv_us(after.ru_stime) - tv_us(before.ru_stime)) / n, (double)(after.ru_nvcsw - before.ru_nvcsw) / n,
           (double)(after.ru_nivcsw - before.ru_nivcsw) / n, (on1 - on0) / n, (wait1 - wait0) / n);
    fflush(stdout);
  }
  if (close(root) < 0) die("close", "root");
  return 0;
}
