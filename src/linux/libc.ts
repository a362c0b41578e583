// The raw C entry points, loaded once, at the first system call. Nothing here checks arguments
// or errno: see calls.ts. Loaded then, not at import: koffi is a native addon, about 9 ms of a
// process start here, which `mountat-hook poststop` with nothing recorded never needs.
import { createRequire } from 'node:module';
import type Koffi from 'koffi';

type KoffiModule = typeof Koffi;

let koffiModule: KoffiModule | undefined;
/** koffi itself (for errno, addresses), loaded on first use. */
export function koffi(): KoffiModule {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- require() returns any; what it loads is koffi, typed by the import above
  koffiModule ??= createRequire(import.meta.url)('koffi') as KoffiModule;
  return koffiModule;
}

let libraryHandle: ReturnType<KoffiModule['load']> | undefined;
/** libc, loaded once for every binding in this folder. */
export function lib(): ReturnType<KoffiModule['load']> {
  libraryHandle ??= koffi().load('libc.so.6');
  return libraryHandle;
}

type Long = number;
type Ptr = Buffer | null;

// glibc's syscall() declared once per argument list. A fixed prototype costs koffi about half
// what a variadic call does, and is safe here: syscall() is plain assembly that reads its
// arguments from the registers of the normal calling convention on x86_64 and aarch64.
// Every integer goes as 'long' so that AT_FDCWD (-100) and flags reach the kernel sign-extended.
function declareSys() {
  const lib_ = lib();
  return {
    /** openat2(dirfd, path, how, size) */
    openat2: lib_.func('long syscall(long nr, long dirfd, const char *path, void *how, size_t size)') as (
      nr: Long,
      dirfd: Long,
      path: string,
      how: Buffer,
      size: Long,
    ) => number,
    /** fsopen(fsname, flags) */
    fsopen: lib_.func('long syscall(long nr, const char *fsname, long flags)') as (nr: Long, fsname: string, flags: Long) => number,
    /** fsconfig(fd, cmd, key, value, aux) */
    fsconfig: lib_.func('long syscall(long nr, long fd, long cmd, const char *key, const char *value, long aux)') as (
      nr: Long,
      fd: Long,
      cmd: Long,
      key: string | null,
      value: string | null,
      aux: Long,
    ) => number,
    /** fsmount(fd, flags, attr_flags), and any other call taking three integers */
    long3: lib_.func('long syscall(long nr, long a, long b, long c)') as (nr: Long, a: Long, b: Long, c: Long) => number,
    /** pidfd_send_signal(pidfd, sig, info, flags), and any other call taking four integers */
    long4: lib_.func('long syscall(long nr, long a, long b, long c, long d)') as (nr: Long, a: Long, b: Long, c: Long, d: Long) => number,
    /** move_mount(from_dfd, from_path, to_dfd, to_path, flags) */
    moveMount: lib_.func('long syscall(long nr, long fromfd, const char *frompath, long tofd, const char *topath, long flags)') as (
      nr: Long,
      fromfd: Long,
      frompath: string,
      tofd: Long,
      topath: string,
      flags: Long,
    ) => number,
    /** open_tree(dfd, path, flags) */
    openTree: lib_.func('long syscall(long nr, long dfd, const char *path, long flags)') as (nr: Long, dfd: Long, path: string, flags: Long) => number,
    /** listmount(req, mnt_ids, nr_mnt_ids, flags) */
    listmount: lib_.func('long syscall(long nr, void *req, _Out_ void *ids, size_t n, long flags)') as (
      nr: Long,
      req: Buffer,
      ids: Buffer,
      n: Long,
      flags: Long,
    ) => number,
    /** mount_setattr(dfd, path, flags, attr, size) */
    mountSetattr: lib_.func('long syscall(long nr, long dfd, const char *path, long flags, void *attr, size_t size)') as (
      nr: Long,
      dfd: Long,
      path: string,
      flags: Long,
      attr: Ptr,
      size: Long,
    ) => number,
  };
}

function declareLibc() {
  const lib_ = lib();
  return {
    /** Variadic, for probing calls with arbitrary arguments: (type, value) pairs. */
    syscall: lib_.func('long syscall(long number, ...)') as (nr: number, ...args: unknown[]) => number,
    /** close, and close.async: on a thread of libuv's pool (closing a detached mount tree's last fd unmounts it there). */
    close: lib_.func('int close(int fd)') as ((fd: number) => number) & { async: (fd: number, done: (error: unknown, rc: number) => void) => void },
    read: lib_.func('long read(int fd, _Out_ void *buf, size_t count)') as (fd: number, buf: Buffer, count: number) => number,
    mkdirat: lib_.func('int mkdirat(int dirfd, const char *path, uint32_t mode)') as (dirfd: number, path: string, mode: number) => number,
    unlinkat: lib_.func('int unlinkat(int dirfd, const char *path, int flags)') as (dirfd: number, path: string, flags: number) => number,
    /** umount2, and umount2.async: the same call on a thread of libuv's pool, errno kept by koffi for koffi().errno(). */
    umount2: lib_.func('int umount2(const char *target, int flags)') as ((target: string, flags: number) => number) & {
      async: (target: string, flags: number, done: (error: unknown, rc: number) => void) => void;
    },
    fchdir: lib_.func('int fchdir(int fd)') as (fd: number) => number,
    statx: lib_.func('int statx(int dirfd, const char *path, int flags, uint32_t mask, _Out_ void *buf)') as (
      dirfd: number,
      path: string,
      flags: number,
      mask: number,
      buf: Buffer,
    ) => number,
    errno: (): number => koffi().errno(),
  };
}

let sysDeclared: ReturnType<typeof declareSys> | undefined;
let libcDeclared: ReturnType<typeof declareLibc> | undefined;
/** The fixed-prototype syscall() entries, declared on first use. */
export const sys = (): ReturnType<typeof declareSys> => (sysDeclared ??= declareSys());
/** The libc functions, declared on first use. */
export const libc = (): ReturnType<typeof declareLibc> => (libcDeclared ??= declareLibc());
