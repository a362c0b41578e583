// Typed wrappers around each system call the engine uses. Each checks its own arguments,
// turns -1 into a SyscallError naming the call and the path it was given, and returns
// owned Fds. No policy lives here: which flags to pass is the caller's decision.
import { MountatError } from '../base/index.js';
import * as C from './constants.js';
import { Fd, type FdRef } from './fd.js';
import { libc, sys } from './libc.js';
import { SyscallError } from './syscall-error.js';

// A number only for AT_FDCWD and the like: the engine above passes FdRefs.
type FdLike = FdRef | number;

function raw(fd: FdLike): number {
  if (typeof fd === 'number') {
    if (!Number.isInteger(fd) || (fd < 0 && fd !== C.AT_FDCWD)) throw new RangeError(`bad file descriptor argument: ${fd}`);
    return fd;
  }
  return fd.fd;
}

function checkName(path: string, what: string): void {
  if (typeof path !== 'string') throw new TypeError(`${what}: path must be a string`);
  if (path.includes('\0')) throw new TypeError(`${what}: path contains a NUL byte`);
}

function fail(syscall: string, path?: string, detail?: string): never {
  throw new SyscallError(syscall, libc().errno(), { path, detail });
}

export interface OpenHow {
  flags: number;
  mode?: number;
  resolve: number;
}

// Buffers for the structs the kernel reads or fills, allocated once: every call here is
// synchronous and none re-enters another, so one of each is enough.
const openHowBuf = Buffer.alloc(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }
const mountAttrBuf = Buffer.alloc(32); // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
const statxBuf = Buffer.alloc(256); // struct statx
const mntIdReqBuf = Buffer.alloc(24); // struct mnt_id_req { u32 size; u32 spare; u64 mnt_id; u64 param; } (MNT_ID_REQ_SIZE_VER0)
const LISTMOUNT_BATCH = 64;
const listmountBuf = Buffer.alloc(8 * LISTMOUNT_BATCH);

/** What a lookup that may miss found: the fd, or the errno that says why not. */
export type Opened = { ok: true; fd: Fd } | { ok: false; errno: number };

/** openat2(2) returning the errno instead of throwing, for lookups where failing is expected. */
export function tryOpenat2(dirfd: FdLike, path: string, how: OpenHow): Opened {
  checkName(path, 'openat2');
  // The three fields are u64; every flag we pass fits in 32 bits, so two u32 writes each.
  openHowBuf.writeUInt32LE(how.flags >>> 0, 0);
  openHowBuf.writeUInt32LE(0, 4);
  openHowBuf.writeUInt32LE((how.mode ?? 0) >>> 0, 8);
  openHowBuf.writeUInt32LE(0, 12);
  openHowBuf.writeUInt32LE(how.resolve >>> 0, 16);
  openHowBuf.writeUInt32LE(0, 20);
  const fd = sys().openat2(C.SYS.openat2, raw(dirfd), path, openHowBuf, 24);
  return fd < 0 ? { ok: false, errno: libc().errno() } : { ok: true, fd: new Fd(fd) };
}

/** openat2(2): the only way the engine looks anything up beneath an untrusted root. */
export function openat2(dirfd: FdLike, path: string, how: OpenHow, where: string = path): Fd {
  const result = tryOpenat2(dirfd, path, how);
  if (!result.ok) throw new SyscallError('openat2', result.errno, { path: where });
  return result.fd;
}

/** Lines the kernel logged into a filesystem context ("e proc: unknown value of hidepid"). */
export function readFsContextLog(fsfd: FdLike): string[] {
  const lines: string[] = [];
  const buf = Buffer.alloc(4096);
  // Each read returns one message; ENODATA ends the log. Bounded in case of a chatty fs.
  for (let i = 0; i < 64; i++) {
    const n = libc().read(raw(fsfd), buf, buf.length);
    if (n <= 0) break;
    lines.push(buf.toString('utf8', 0, n).replace(/[\0\s]+$/, ''));
  }
  return lines;
}

function contextDetail(fsfd: FdLike): string | undefined {
  const lines = readFsContextLog(fsfd);
  if (lines.length === 0) return undefined;
  // Drop the one-letter severity prefix ("e ", "w ", "i ").
  return lines.map((line) => line.replace(/^[ewi] /, '')).join('; ');
}

export function fsopen(fsname: string, flags: number = C.FSOPEN_CLOEXEC): Fd {
  checkName(fsname, 'fsopen');
  const fd = sys().fsopen(C.SYS.fsopen, fsname, flags);
  if (fd < 0) fail('fsopen', undefined, fsname);
  return new Fd(fd);
}

function fsconfigRaw(fsfd: FdLike, cmd: number, key: string | null, value: string | null, aux: number, where?: string): void {
  const rc = sys().fsconfig(C.SYS.fsconfig, raw(fsfd), cmd, key, value, aux);
  if (rc < 0) {
    const errno = libc().errno();
    const label = key === null ? '' : `${key}${value === null ? '' : `=${value}`}`;
    const detail = contextDetail(fsfd) ?? (label || undefined);
    throw new SyscallError('fsconfig', errno, { path: where, detail });
  }
}

export function fsconfigSetString(fsfd: FdLike, key: string, value: string, where?: string): void {
  checkName(key, 'fsconfig');
  checkName(value, 'fsconfig');
  fsconfigRaw(fsfd, C.FSCONFIG_SET_STRING, key, value, 0, where);
}

export function fsconfigSetFlag(fsfd: FdLike, key: string, where?: string): void {
  checkName(key, 'fsconfig');
  fsconfigRaw(fsfd, C.FSCONFIG_SET_FLAG, key, null, 0, where);
}

export function fsconfigSetFd(fsfd: FdLike, key: string, fd: FdLike, where?: string): void {
  checkName(key, 'fsconfig');
  fsconfigRaw(fsfd, C.FSCONFIG_SET_FD, key, null, raw(fd), where);
}

export function fsconfigCreate(fsfd: FdLike, where?: string): void {
  fsconfigRaw(fsfd, C.FSCONFIG_CMD_CREATE, null, null, 0, where);
}

export function fsmount(fsfd: FdLike, attrFlags: number, where?: string): Fd {
  const fd = sys().long3(C.SYS.fsmount, raw(fsfd), C.FSMOUNT_CLOEXEC, attrFlags);
  if (fd < 0) {
    const errno = libc().errno();
    throw new SyscallError('fsmount', errno, { path: where, detail: contextDetail(fsfd) });
  }
  return new Fd(fd);
}

/** Attach a detached mount (fromFd) onto an already-resolved target fd; no path lookup. */
export function moveMountOntoFd(fromFd: FdLike, toFd: FdLike, where?: string): void {
  const flags = C.MOVE_MOUNT_F_EMPTY_PATH | C.MOVE_MOUNT_T_EMPTY_PATH;
  const rc = sys().moveMount(C.SYS.move_mount, raw(fromFd), '', raw(toFd), '', flags);
  if (rc < 0) fail('move_mount', where);
}

export function openTree(dirfd: FdLike, path: string, flags: number, where: string = path): Fd {
  checkName(path, 'open_tree');
  const fd = sys().openTree(C.SYS.open_tree, raw(dirfd), path, flags);
  if (fd < 0) fail('open_tree', where);
  return new Fd(fd);
}

export interface MountAttr {
  attrSet: number;
  attrClr?: number;
  propagation?: number;
}

export function mountSetattr(dirfd: FdLike, path: string, flags: number, attr: MountAttr, where: string = path): void {
  checkName(path, 'mount_setattr');
  mountAttrBuf.fill(0);
  mountAttrBuf.writeUInt32LE(attr.attrSet >>> 0, 0);
  mountAttrBuf.writeUInt32LE((attr.attrClr ?? 0) >>> 0, 8);
  mountAttrBuf.writeUInt32LE((attr.propagation ?? 0) >>> 0, 16);
  const rc = sys().mountSetattr(C.SYS.mount_setattr, raw(dirfd), path, flags, mountAttrBuf, 32);
  if (rc < 0) fail('mount_setattr', where);
}

export function umount2(target: string, flags: number, where: string = target): void {
  checkName(target, 'umount2');
  if (libc().umount2(target, flags) < 0) fail('umount2', where);
}

/**
 * umount2(2) on a thread of libuv's pool: the event loop goes on while the kernel waits for the
 * RCU grace period that ends every unmount (namespace_unlock). Mount namespaces are per process
 * (Node never changes one in a thread: FACTS.md), so the call acts where umount2 would; a
 * /proc/thread-self/fd/N target names the same fd from any thread, the fd table being shared.
 * The caller keeps what the target names (an fd) open until the promise settles.
 */
export function umount2Async(target: string, flags: number, where: string = target): Promise<void> {
  checkName(target, 'umount2');
  return new Promise((resolve, reject) => {
    libc().umount2.async(target, flags, (error, rc) => {
      if (error) reject(error instanceof Error ? error : new MountatError('internal', `umount2 on a pool thread failed: ${JSON.stringify(error)}`));
      else if (rc < 0) reject(new SyscallError('umount2', libc().errno(), { path: where }));
      else resolve();
    });
  });
}

export function mkdirat(dirfd: FdLike, name: string, mode: number, where: string = name): void {
  checkName(name, 'mkdirat');
  if (libc().mkdirat(raw(dirfd), name, mode) < 0) fail('mkdirat', where);
}

export function unlinkat(dirfd: FdLike, name: string, flags: number, where: string = name): void {
  checkName(name, 'unlinkat');
  if (libc().unlinkat(raw(dirfd), name, flags) < 0) fail('unlinkat', where);
}

export function fchdir(fd: FdLike, where?: string): void {
  if (libc().fchdir(raw(fd)) < 0) fail('fchdir', where);
}

export interface Statx {
  mask: number;
  mode: number;
  ino: bigint;
  devMajor: number;
  devMinor: number;
  /** stx_mnt_id: the unique (never reused) id when mask has STATX_MNT_ID_UNIQUE. */
  mountId: bigint;
}

export function statx(dirfd: FdLike, path: string, flags: number, mask: number, where: string = path): Statx {
  checkName(path, 'statx');
  if (libc().statx(raw(dirfd), path, flags, mask, statxBuf) < 0) fail('statx', where);
  return {
    mask: statxBuf.readUInt32LE(0),
    mode: statxBuf.readUInt16LE(28),
    ino: statxBuf.readBigUInt64LE(32),
    devMajor: statxBuf.readUInt32LE(136),
    devMinor: statxBuf.readUInt32LE(140),
    mountId: statxBuf.readBigUInt64LE(144),
  };
}

/**
 * listmount(2) (Linux 6.8+): the unique ids of every mount beneath the mount whose unique id is
 * `mountId`, its whole subtree (children, theirs, and mounts stacked on it), not itself. The
 * kernel walks the subtree in every version merged (next_mnt, later the namespace's tree filtered
 * by reachability). ENOSYS on older kernels, ENOENT when no such mount is in this namespace.
 */
export function listmount(mountId: bigint, where?: string): bigint[] {
  const ids: bigint[] = [];
  let last = 0n;
  for (;;) {
    mntIdReqBuf.writeUInt32LE(24, 0);
    mntIdReqBuf.writeUInt32LE(0, 4);
    mntIdReqBuf.writeBigUInt64LE(mountId, 8);
    // Where a batch came back full, the next one starts after its last id.
    mntIdReqBuf.writeBigUInt64LE(last, 16);
    const n = sys().listmount(C.SYS.listmount, mntIdReqBuf, listmountBuf, LISTMOUNT_BATCH, 0);
    if (n < 0) fail('listmount', where);
    for (let i = 0; i < n; i++) ids.push(listmountBuf.readBigUInt64LE(8 * i));
    if (n < LISTMOUNT_BATCH) return ids;
    last = ids.at(-1)!;
  }
}

/**
 * A raw syscall made with arguments that cannot succeed (a bad fd), for feature probing as
 * LXC does: ENOSYS means the kernel lacks the call, any other errno means it has it.
 */
export function probeSyscall(nr: number, ...args: unknown[]): number {
  const rc = libc().syscall(nr, ...args);
  return rc < 0 ? libc().errno() : 0;
}
