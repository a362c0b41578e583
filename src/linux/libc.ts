// The raw C entry points, loaded once. Nothing here checks arguments or errno: see calls.ts.
import koffi from 'koffi';

const lib = koffi.load('libc.so.6');

export const libc = {
  /** Variadic: arguments are (type, value) pairs; fds and flags go as 'long' so AT_FDCWD sign-extends. */
  syscall: lib.func('long syscall(long number, ...)') as (nr: number, ...args: unknown[]) => number,
  close: lib.func('int close(int fd)') as (fd: number) => number,
  read: lib.func('long read(int fd, _Out_ void *buf, size_t count)') as (fd: number, buf: Buffer, count: number) => number,
  mkdirat: lib.func('int mkdirat(int dirfd, const char *path, uint32_t mode)') as (dirfd: number, path: string, mode: number) => number,
  unlinkat: lib.func('int unlinkat(int dirfd, const char *path, int flags)') as (dirfd: number, path: string, flags: number) => number,
  umount2: lib.func('int umount2(const char *target, int flags)') as (target: string, flags: number) => number,
  fchdir: lib.func('int fchdir(int fd)') as (fd: number) => number,
  statx: lib.func('int statx(int dirfd, const char *path, int flags, uint32_t mask, _Out_ void *buf)') as (
    dirfd: number,
    path: string,
    flags: number,
    mask: number,
    buf: Buffer,
  ) => number,
  errno: (): number => koffi.errno(),
};
