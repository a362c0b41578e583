// Kernel ABI constants for the mount API. Syscall numbers of the new mount API are the
// same on x86_64 and aarch64 (they were added after the generic table was unified);
// the older ones differ and are taken from glibc's wrappers instead of by number.
import { constants as fsConstants } from 'node:fs';

export const SYS = {
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  openat2: 437,
  mount_setattr: 442,
  listmount: 458,
  pidfd_send_signal: 424,
  pidfd_open: 434,
  // The older calls differ per architecture: pivot_root is 155 on x86_64, 41 on aarch64.
  pivot_root: process.arch === 'arm64' ? 41 : 155,
} as const;

// O_DIRECTORY and O_NOFOLLOW differ per architecture (x86_64 0x10000/0x20000, aarch64
// 0x4000/0x8000): take them from Node. Node does not export O_PATH or O_CLOEXEC; both are
// the same on x86_64 and aarch64.
export const O_DIRECTORY = fsConstants.O_DIRECTORY;
export const O_NOFOLLOW = fsConstants.O_NOFOLLOW;
export const O_RDONLY = fsConstants.O_RDONLY;
export const O_PATH = 0x200000;
export const O_CLOEXEC = 0x80000;

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const AT_RECURSIVE = 0x8000;

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const FSOPEN_CLOEXEC = 0x1;
export const FSMOUNT_CLOEXEC = 0x1;

export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_SET_FD = 5;
export const FSCONFIG_CMD_CREATE = 6;

export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR_RELATIME = 0x0;
export const MOUNT_ATTR_NOATIME = 0x10;
export const MOUNT_ATTR_STRICTATIME = 0x20;
export const MOUNT_ATTR__ATIME = 0x70;
export const MOUNT_ATTR_NODIRATIME = 0x80;
export const MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOVE_MOUNT_T_EMPTY_PATH = 0x40;

export const OPEN_TREE_CLONE = 0x1;
export const OPEN_TREE_CLOEXEC = O_CLOEXEC;

export const MS_PRIVATE = 1 << 18;

export const MNT_DETACH = 0x2;
export const UMOUNT_NOFOLLOW = 0x8;

export const STATX_TYPE = 0x1;
export const STATX_MODE = 0x2;
export const STATX_INO = 0x100;
export const STATX_MNT_ID = 0x1000;
export const STATX_MNT_ID_UNIQUE = 0x4000;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
