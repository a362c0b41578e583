#define _GNU_SOURCE
#include "filter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "raw.h"
#include "seccomp-policy.h"

/*
 * The action's seccomp filter, from the table src/sandbox/seccomp-policy.ts (seccomp-policy.h):
 * everything allowed but what the table refuses, each refusal an errno (never a kill), and every
 * system call of another ABI refused with ENOSYS (libseccomp's bad-arch action: i386's int $0x80
 * and x32 on x86_64, AArch32 on aarch64). It is stacked under whatever filter the starter itself
 * runs under (the kernel applies the strictest answer of all), and loaded last before exec.
 *
 * It is also the inotify broker's filter (broker.c): where the kernel has user notification, the
 * program opens with NOTIFY_LENGTH instructions that hand the native inotify_init and
 * inotify_init1 to a listener (SECCOMP_RET_USER_NOTIF); a foreign ABI's are refused with ENOSYS
 * further on, as all of its calls are. An action with a broker loads the whole program with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER; one without (no PID namespace, or a filter of the runner's own
 * container that already has a listener) loads the same program without its opening, whose
 * jumps, all forward, are unchanged. One filter, not two: each load cost 0.15-0.35 ms here.
 *
 * libseccomp builds it, but only once per set of options: building took 0.6-0.8 ms here, and
 * the server forks every action from one set. So the program is exported from libseccomp (as
 * runc's patchbpf does), kept, and each action loads it with seccomp(SECCOMP_SET_MODE_FILTER).
 */

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
/* The rules below read clone's flags as its first argument and argument words as little-endian. */
#error "the action's seccomp filter is written for x86_64 and aarch64"
#endif

enum { CAP_SYS_ADMIN_ = 21, CACHED = 8 };

/* The brokered calls' opening (notify_prefix); aarch64 has no inotify_init. */
#if defined(SYS_inotify_init)
enum { NOTIFY_LENGTH = 6 };
#else
enum { NOTIFY_LENGTH = 5 };
#endif

/* What a rule of the table wants besides libseccomp's rules: personality's, written by hand. */
struct extra {
  int personality_error;
};

/* NAME is the LEN bytes at P. */
static int named(const char *p, size_t len, const char *name) {
  return strlen(name) == len && strncmp(p, name, len) == 0;
}

/* Whether the comma list LIST names NAME. */
static int listed(const char *list, const char *name) {
  for (const char *p = list; p != NULL && *p != '\0';) {
    const char *end = strchrnul(p, ',');
    if (named(p, (size_t)(end - p), name)) return 1;
    p = *end == ',' ? end + 1 : end;
  }
  return 0;
}

enum refusal { NOT_REFUSED, ALLOWABLE, KEEPS_USERNS_CLOSED };

static enum refusal refusal_of(const char *p, size_t len) {
#define ALLOWABLE_NAME(name, error)                                                                                                        \
  if (named(p, len, #name)) return ALLOWABLE;
  SECCOMP_BY_NAME(ALLOWABLE_NAME)
  SECCOMP_UNLESS_ADMIN(ALLOWABLE_NAME)
  SECCOMP_BY_ARGUMENTS(ALLOWABLE_NAME)
#undef ALLOWABLE_NAME
#define USERNS_NAME(name, error)                                                                                                           \
  if (named(p, len, #name)) return KEEPS_USERNS_CLOSED;
  SECCOMP_USER_NAMESPACES(USERNS_NAME)
#undef USERNS_NAME
  return NOT_REFUSED;
}

const char *check_allowed_syscalls(const char *list) {
  static char why[200];
  for (const char *p = list;;) {
    const char *end = strchrnul(p, ',');
    int len = (int)(end - p);
    enum refusal refusal = refusal_of(p, (size_t)len);
    if (refusal == NOT_REFUSED) {
      snprintf(why, sizeof why, "--allow-syscalls: the filter does not refuse \"%.*s\"", len, p);
      return why;
    }
    if (refusal == KEEPS_USERNS_CLOSED) {
      snprintf(why, sizeof why, "--allow-syscalls: \"%.*s\" is refused to keep user namespaces closed: --allow-userns opens them", len, p);
      return why;
    }
    if (*end == '\0') return NULL;
    p = end + 1;
  }
}

/* A call refused by name. libseccomp skips a call this architecture lacks (SCMP_SYS gives it a
 * negative pseudo-number): it cannot be made here. */
static int refuse(scmp_filter_ctx ctx, int nr, int error) {
  return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), nr, 0);
}

/*
 * personality: Docker's rule, only 0 (PER_LINUX), PER_LINUX32, UNAME26, both, and the query
 * 0xffffffff; READ_IMPLIES_EXEC (every readable mapping executable), ADDR_NO_RANDOMIZE and the
 * rest refused. libseccomp 2.5 cannot say "none of these" in a filter whose default is to allow
 * (two comparisons of one argument in a rule are EINVAL, and an ALLOW rule is refused as the
 * default action): personality_prefix writes it by hand.
 */
static int rule_personality(scmp_filter_ctx ctx, int error, struct extra *x) {
  (void)ctx;
  x->personality_error = error;
  return 0;
}

/*
 * An int argument equal to VALUE. The kernel reads only the low word of an int argument, so the
 * high word must not count: libseccomp's SCMP_A0_32(SCMP_CMP_EQ, ...) compares all 64 bits (its
 * high word 0), which socket(0x100000028) would pass as AF_VSOCK; a mask of the low word does not.
 */
#define INT_ARG_IS(arg, value) SCMP_CMP64(arg, SCMP_CMP_MASKED_EQ, 0xffffffffU, (value))

/* socket: AF_VSOCK (the hypervisor's services, from inside a VM) and AF_ALG (the kernel's
 * crypto API), as Docker. */
static int rule_socket(scmp_filter_ctx ctx, int error, struct extra *x) {
  (void)x;
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(socket), 1, INT_ARG_IS(0, AF_VSOCK));
  return rc != 0 ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(socket), 1, INT_ARG_IS(0, AF_ALG));
}

/* unshare and clone with CLONE_NEWUSER among their flags (the first argument of both here). */
static int rule_unshare(scmp_filter_ctx ctx, int error, struct extra *x) {
  (void)x;
  return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(unshare), 1, SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
}

static int rule_clone(scmp_filter_ctx ctx, int error, struct extra *x) {
  (void)x;
  return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(clone), 1, SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
}

/* clone3 passes its flags in memory, which seccomp cannot read: all of it, with ENOSYS, on which
 * glibc's pthread_create, posix_spawn and fork fall back to clone (where the flags are seen). */
static int rule_clone3(scmp_filter_ctx ctx, int error, struct extra *x) {
  (void)x;
  return refuse(ctx, SCMP_SYS(clone3), error);
}

/* setns into a user namespace: its type named (CLONE_NEWUSER), or 0, which takes any type. */
static int rule_setns(scmp_filter_ctx ctx, int error, struct extra *x) {
  (void)x;
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(setns), 1, SCMP_A1_64(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  return rc != 0 ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(setns), 1, INT_ARG_IS(1, 0));
}

enum { PREFIX_LENGTH = 12 };

/*
 * personality's rule, put before libseccomp's program (runc's patchbpf puts its stub there the
 * same way): every jump is forward, so the program after it is unchanged. Any other call, or a
 * foreign ABI, falls through to libseccomp's program at index PREFIX_LENGTH. The kernel takes
 * the persona as an unsigned int: only the low word of the argument counts.
 */
static void personality_prefix(struct sock_filter *code, int error) {
  const unsigned int arg0_low = offsetof(struct seccomp_data, args[0]);
  struct sock_filter prefix[PREFIX_LENGTH] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 0, 10), /* not native: to 12 */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_personality, 0, 8), /* another call: to 12 */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg0_low),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0),          /* PER_LINUX: to 11 */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0008, 4, 0),     /* PER_LINUX32 */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20000, 3, 0),    /* UNAME26 */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x20008, 2, 0),    /* PER_LINUX32 | UNAME26 */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffff, 1, 0), /* the query */
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned int)error & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  memcpy(code, prefix, sizeof prefix);
}

/*
 * The broker's calls, put before everything else: the native ABI's inotify_init and inotify_init1
 * go to the listener whatever their arguments. Anything else falls through to index
 * NOTIFY_LENGTH. (An x32 call comes as AUDIT_ARCH_X86_64 with bit 30 set in its number: it
 * matches neither, and libseccomp's program refuses it.)
 */
static void notify_prefix(struct sock_filter *code) {
  struct sock_filter prefix[NOTIFY_LENGTH] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 0, NOTIFY_LENGTH - 2), /* not native: past the end */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(SYS_inotify_init)
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_inotify_init, 1, 0), /* to the return */
#endif
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_inotify_init1, 0, 1), /* another call: past the end */
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  memcpy(code, prefix, sizeof prefix);
}

/* The program libseccomp made, by way of a memfd (libseccomp 2.5 exports only to an fd), after
 * the prefixes wanted (the broker's NOTIFY instructions, then personality's). -errno on failure. */
static int export_program(scmp_filter_ctx ctx, const struct extra *x, size_t notify, struct sock_fprog *out) {
  cleanup_close int fd = memfd_create("mountat-filter", MFD_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = seccomp_export_bpf(ctx, fd);
  if (rc != 0) return rc;
  off_t size = lseek(fd, 0, SEEK_END);
  size_t prefix = notify + (x->personality_error != 0 ? PREFIX_LENGTH : 0);
  size_t count = prefix + (size_t)size / sizeof(struct sock_filter);
  if (size <= 0 || (size_t)size % sizeof(struct sock_filter) != 0 || count > BPF_MAXINSNS) return -EINVAL;
  struct sock_filter *code = calloc(count, sizeof *code);
  if (code == NULL) return -ENOMEM;
  if (notify != 0) notify_prefix(code);
  if (x->personality_error != 0) personality_prefix(code + notify, x->personality_error);
  if (pread(fd, code + prefix, (size_t)size, 0) != size) {
    free(code);
    return -EIO;
  }
  *out = (struct sock_fprog){.len = (unsigned short)count, .filter = code};
  return 0;
}

/* The program for these options, opening with NOTIFY instructions of the broker's (0 or
 * NOTIFY_LENGTH). -errno on failure. */
static int build(const struct options *o, int admin, size_t notify, struct sock_fprog *out) {
  struct extra x = {.personality_error = 0};
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) return -ENOMEM;
  /* Only the native ABI is in the filter (seccomp_init's): any other is this action. */
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
  /* A binary tree of the calls rather than a list (as runc asks for long lists): loading the
   * program took 195 us here instead of 230 (on a busy machine; 100 us idle), the kernel running
   * it for every call number as it loads it (to cache which calls it always allows, and never
   * runs it for those again). */
  if (rc == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  const char *allow = o->allow_syscalls;
#define BY_NAME(name, error)                                                                                                               \
  if (rc == 0 && !listed(allow, #name)) rc = refuse(ctx, SCMP_SYS(name), error);
  SECCOMP_BY_NAME(BY_NAME)
#undef BY_NAME
  /* With CAP_SYS_ADMIN kept, or in a user namespace of its own, mounting is what the action is for. */
#define UNLESS_ADMIN(name, error)                                                                                                          \
  if (rc == 0 && !admin && !o->userns && !listed(allow, #name)) rc = refuse(ctx, SCMP_SYS(name), error);
  SECCOMP_UNLESS_ADMIN(UNLESS_ADMIN)
#undef UNLESS_ADMIN
#define BY_ARGUMENTS(name, error)                                                                                                          \
  if (rc == 0 && !listed(allow, #name)) rc = rule_##name(ctx, error, &x);
  SECCOMP_BY_ARGUMENTS(BY_ARGUMENTS)
#undef BY_ARGUMENTS
#define USER_NAMESPACES(name, error)                                                                                                       \
  if (rc == 0 && !o->userns) rc = rule_##name(ctx, error, &x);
  SECCOMP_USER_NAMESPACES(USER_NAMESPACES)
#undef USER_NAMESPACES
  if (rc == 0) rc = export_program(ctx, &x, notify, out);
  seccomp_release(ctx);
  return rc;
}

/* Programs built, by what they were built from; the oldest is replaced when all are taken (a
 * forked action has its own copy by then: requests are served one at a time). */
static struct built {
  int admin, userns;
  char *allow;
  struct sock_fprog program;
} cache[CACHED];
static unsigned int next_slot;

/* The broker's opening, where the kernel has user notification (libseccomp's API level 5: 5.0);
 * asked once per process. Every program of the process opens with it, or none does. */
static size_t notify_length(void) {
  static int level = -1;
  if (level < 0) level = seccomp_api_get();
  return level >= 5 ? NOTIFY_LENGTH : 0;
}

void prepare_filter(struct options *o) {
  /* An action keeps CAP_SYS_ADMIN only as root (start_action gives one with --uid none). */
  int admin = o->uid < 0 && (o->caps & (1ULL << CAP_SYS_ADMIN_)) != 0;
  const char *allow = o->allow_syscalls != NULL ? o->allow_syscalls : "";
  for (int i = 0; i < CACHED; i++) {
    struct built *b = &cache[i];
    if (b->allow != NULL && b->admin == admin && b->userns == o->userns && strcmp(b->allow, allow) == 0) {
      o->filter = &b->program;
      o->filter_notify = notify_length();
      return;
    }
  }
  struct sock_fprog program;
  size_t notify = notify_length();
  int rc = build(o, admin, notify, &program);
  char *key = rc == 0 ? strdup(allow) : NULL;
  if (rc == 0 && key == NULL) {
    free(program.filter);
    rc = -ENOMEM;
  }
  if (rc != 0) {
    o->filter = NULL;
    o->filter_error = -rc;
    return;
  }
  struct built *slot = &cache[next_slot++ % CACHED];
  free(slot->allow);
  free(slot->program.filter);
  *slot = (struct built){.admin = admin, .userns = o->userns, .allow = key, .program = program};
  o->filter = &slot->program;
  o->filter_notify = notify;
}

int load_filter(const struct options *o, int *listener) {
  if (o->filter == NULL) return -o->filter_error;
  if (listener != NULL && o->filter_notify != 0) {
    int rc = RSI(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, o->filter);
    *listener = rc;
    if (rc >= 0) return 0;
    /* EBUSY: a filter of the runner's own container already has a listener (one per chain). The
     * program without the broker's calls, then: inotify is charged to the action's uid. */
    if (rc != -EBUSY) return rc;
  }
  if (listener != NULL) *listener = -1;
  /* Without the opening: the broker's calls would fail with ENOSYS where nobody listens. */
  size_t skip = o->filter_notify;
  struct sock_fprog rest = {.len = (unsigned short)(o->filter->len - skip), .filter = o->filter->filter + skip};
  return RSI(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &rest);
}
