/*
 * Kernel ABI the static glibc headers may not name (same values on x86_64 and aarch64). The
 * trailing underscore keeps them apart from a libc that does name them. src/linux/constants.ts
 * holds the same values for the TypeScript side; src/linux/constants.test.ts checks that each
 * define here agrees with it, or is one the TypeScript side has no use for.
 */
#ifndef MOUNTAT_STARTER_KERNEL_H
#define MOUNTAT_STARTER_KERNEL_H

#include <stdint.h>
#include <sys/syscall.h>

#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define MOUNT_ATTR_NOSUID_ 0x2
#define MS_PRIVATE_ (1 << 18)
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04
#define RESOLVE_IN_ROOT_ 0x10
#define CLOSE_RANGE_CLOEXEC_ (1U << 2)
#define LINUX_CAPABILITY_VERSION_3_ 0x20080522
#define PR_CAP_AMBIENT_ 47
#define PR_CAP_AMBIENT_CLEAR_ALL_ 4
#define KEYCTL_JOIN_SESSION_KEYRING_ 1
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
/* _IO(PIDFS_IOCTL_MAGIC 0xFF, 5): an nsfs fd of a pidfd's PID namespace (6.11+). */
#define PIDFD_GET_PID_NAMESPACE_ 0xFF05
#define FSOPEN_CLOEXEC_ 0x1
#define FSMOUNT_CLOEXEC_ 0x1
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#define MOUNT_ATTR_NODEV_ 0x4
#define MOUNT_ATTR_NOEXEC_ 0x8

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define CLONE_INTO_CGROUP_ 0x200000000

/* CLONE_ARGS_SIZE_VER2: with the cgroup field (5.7+). */
struct clone_args_ {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
struct mount_attr_ {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
struct open_how_ {
  uint64_t flags, mode, resolve;
};
struct cap_header_ {
  uint32_t version;
  int pid;
};
struct cap_data_ {
  uint32_t effective, permitted, inheritable;
};

/* The sizes the kernel knows these by (and src/linux/calls.ts passes). */
_Static_assert(sizeof(struct mount_attr_) == 32, "struct mount_attr is MOUNT_ATTR_SIZE_VER0 bytes");
_Static_assert(sizeof(struct clone_args_) == 88, "struct clone_args is CLONE_ARGS_SIZE_VER2 bytes");
_Static_assert(sizeof(struct open_how_) == 24, "struct open_how is OPEN_HOW_SIZE_VER0 bytes");

#endif
