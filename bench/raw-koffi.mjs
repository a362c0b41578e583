// The "raw koffi" floor of the benchmark: the very system calls of one attach+detach cycle of
// the default plan, its hardened proc's and sysfs's covers included (the same calls, in the same
// order, as the engine and bench/cycle.c; 165 on the test machine's kernel),
// made straight through koffi with no engine code: fixed prototypes, buffers allocated once,
// plain numbers for fds. What this costs above C is what any Node code pays for these calls;
// what the engine costs above this is the engine's own overhead.
//
// Used in-process by bench/engine.mjs (rawCycle), or on its own, for strace or a quick look:
//   node bench/raw-koffi.mjs ROOT CYCLES REPS WARMUP
// which prints per timed run the same fields as cycle.c (see bench/measure.mjs).
import koffi from 'koffi';
import { constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatBatch, timeBatch } from './measure.mjs';

const lib = koffi.load('libc.so.6');

// syscall() declared once per argument list: a fixed prototype costs koffi far less than a
// variadic one, and syscall() reads its arguments from the ordinary argument registers.
// Every integer is a long so that AT_FDCWD (-100) reaches the kernel sign-extended.
const sysOpenat2 = lib.func('long syscall(long nr, long dirfd, const char *path, void *how, size_t size)');
const sysFsopen = lib.func('long syscall(long nr, const char *fsname, long flags)');
const sysFsconfig = lib.func('long syscall(long nr, long fd, long cmd, const char *key, const char *value, long aux)');
const sysLong3 = lib.func('long syscall(long nr, long a, long b, long c)');
const sysMoveMount = lib.func('long syscall(long nr, long fromfd, const char *frompath, long tofd, const char *topath, long flags)');
const sysOpenTree = lib.func('long syscall(long nr, long dfd, const char *path, long flags)');
const sysMountSetattr = lib.func('long syscall(long nr, long dfd, const char *path, long flags, void *attr, size_t size)');
// glibc has wrappers for these.
const statx = lib.func('int statx(int dirfd, const char *path, int flags, uint32_t mask, void *buf)');
const mkdirat = lib.func('int mkdirat(int dirfd, const char *path, uint32_t mode)');
const unlinkat = lib.func('int unlinkat(int dirfd, const char *path, int flags)');
const umount2 = lib.func('int umount2(const char *target, int flags)');
const close = lib.func('int close(int fd)');

// Same numbers on x86_64 and aarch64 (the new mount API came after the tables were unified).
const NR = { openTree: 428, moveMount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, openat2: 437, mountSetattr: 442 };
const O_PATH = 0x200000;
const O_CLOEXEC = 0x80000;
const { O_DIRECTORY, O_NOFOLLOW } = fsConstants;
const RESOLVE = { NO_XDEV: 1, NO_MAGICLINKS: 2, NO_SYMLINKS: 4, BENEATH: 8, IN_ROOT: 0x10 };
const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const OPEN_TREE_CLONE = 1;
const MS_PRIVATE = 1 << 18;
const FSOPEN_CLOEXEC = 1;
const FSMOUNT_CLOEXEC = 1;
const MOVE_MOUNT_EMPTY_PATHS = 0x4 | 0x40; // F_EMPTY_PATH | T_EMPTY_PATH
const ATTR = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8 };
const STATX = { TYPE: 1, INO: 0x100, MNT_ID: 0x1000, MNT_ID_UNIQUE: 0x4000 };
const MNT_DETACH = 2;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const { ENOENT, EEXIST } = osConstants.errno;

// The engine's lookup rules (src/mounts/resolve.ts).
const BENEATH = RESOLVE.IN_ROOT | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS;
const DIR_PATH = O_PATH | O_DIRECTORY | O_CLOEXEC;

/** defaultPlan(): proc and sysfs (hardened), tmpfs, with src/mounts/defaults.ts's options and attributes. */
const PLAN = [
  { target: 'proc', type: 'proc', options: [], attrs: ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC, covers: 'proc' },
  { target: 'sys', type: 'sysfs', options: [], attrs: ATTR.RDONLY | ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC, covers: 'sysfs' },
  {
    target: 'tmp',
    type: 'tmpfs',
    options: [
      ['mode', '1777'],
      ['size', '512m'],
    ],
    attrs: ATTR.NOSUID | ATTR.NODEV,
  },
];

// Allocated once: struct open_how (three u64) per lookup kind, and one struct statx.
function openHow(flags, resolve) {
  const how = Buffer.alloc(24);
  how.writeUInt32LE(flags >>> 0, 0);
  how.writeUInt32LE(resolve >>> 0, 16);
  return how;
}
const HOW_TARGET = openHow(DIR_PATH, BENEATH | RESOLVE.NO_XDEV);
const HOW_TOP = openHow(O_PATH | O_NOFOLLOW | O_CLOEXEC, BENEATH);
const HOW_ROOT = openHow(O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
const st = Buffer.alloc(256);

/** PROC_COVERS, SYSFS_COVERS and COVER_ATTRIBUTES of src/mounts/covers.ts, in their order. */
const BENEATH_MOUNT = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS | RESOLVE.NO_XDEV;
const HOW_COVER_FILE = openHow(O_PATH | O_CLOEXEC, BENEATH_MOUNT);
const HOW_COVER_DIR = openHow(O_PATH | O_DIRECTORY | O_CLOEXEC, BENEATH_MOUNT);
const COVERS = {
  proc: [
    ...['sys', 'sysrq-trigger', 'irq', 'bus', 'fs'].map((name) => ({ name, how: 'readonly', directory: name !== 'sysrq-trigger' })),
    ...['kcore', 'keys', 'timer_list', 'sched_debug', 'latency_stats', 'timer_stats', 'key-users', 'interrupts'].map((name) => ({
      name,
      how: 'masked',
      directory: false,
    })),
    ...['acpi', 'asound', 'scsi'].map((name) => ({ name, how: 'masked', directory: true })),
  ],
  sysfs: ['firmware', 'devices/virtual/powercap'].map((name) => ({ name, how: 'masked', directory: true })),
};
const COVER_ATTRS = {
  readonly: ATTR.RDONLY | ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC,
  maskedFile: ATTR.RDONLY | ATTR.NOSUID | ATTR.NOEXEC,
  maskedDirectory: ATTR.RDONLY | ATTR.NOSUID | ATTR.NODEV | ATTR.NOEXEC,
};
/** struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }, one per attribute set. */
function mountAttr(attrs) {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(attrs, 0);
  attr.writeUInt32LE(MS_PRIVATE, 16);
  return attr;
}
const ATTR_READONLY = mountAttr(COVER_ATTRS.readonly);
const ATTR_MASKED_FILE = mountAttr(COVER_ATTRS.maskedFile);

function fail(call, what) {
  throw new Error(`raw-koffi: ${call} ${what}: errno ${koffi.errno()}`);
}

function statxOrFail(fd, path, flags, mask, what) {
  if (statx(fd, path, flags, mask, st) < 0) fail('statx', what);
}

// u64 fields compared as two u32 halves: no BigInt on the hot path.
const lo = (offset) => st.readUInt32LE(offset);
const hi = (offset) => st.readUInt32LE(offset + 4);

/** The root's dev and ino, as the engine's rootIdentityOf() reads them at attach and detach. */
function rootIdentity(root) {
  statxOrFail(root, '', AT_EMPTY_PATH, STATX.INO | STATX.TYPE, 'root');
  if ((st.readUInt16LE(28) & S_IFMT) !== S_IFDIR) throw new Error('raw-koffi: root is not a directory');
  return `${st.readUInt32LE(136)}:${st.readUInt32LE(140)}:${hi(32)}:${lo(32)}`;
}

/** resolveMountpoint() for a one-component target that is usually missing. */
function resolveTarget(root, entry, record) {
  let fd = sysOpenat2(NR.openat2, root, entry.target, HOW_TARGET, 24);
  if (fd >= 0) return fd;
  if (koffi.errno() !== ENOENT) fail('openat2', entry.target);
  const made = mkdirat(root, entry.target, 0o755) === 0;
  if (!made && koffi.errno() !== EEXIST) fail('mkdirat', entry.target);
  fd = sysOpenat2(NR.openat2, root, entry.target, HOW_TARGET, 24);
  if (fd < 0) fail('openat2', entry.target);
  if (made) {
    statxOrFail(fd, '', AT_EMPTY_PATH, STATX.INO, entry.target);
    record.created = true;
    record.inoLo = lo(32);
    record.inoHi = hi(32);
  }
  return fd;
}

function attachOne(root, entry) {
  const record = { created: false, inoLo: 0, inoHi: 0, idLo: 0, idHi: 0, uniqueLo: 0, uniqueHi: 0, hasUnique: false };
  const target = resolveTarget(root, entry, record);
  const fsfd = sysFsopen(NR.fsopen, entry.type, FSOPEN_CLOEXEC);
  if (fsfd < 0) fail('fsopen', entry.type);
  if (sysFsconfig(NR.fsconfig, fsfd, FSCONFIG_SET_STRING, 'source', entry.type, 0) < 0) fail('fsconfig source', entry.target);
  for (const [key, value] of entry.options) {
    if (sysFsconfig(NR.fsconfig, fsfd, FSCONFIG_SET_STRING, key, value, 0) < 0) fail('fsconfig', key);
  }
  if (sysFsconfig(NR.fsconfig, fsfd, FSCONFIG_CMD_CREATE, null, null, 0) < 0) fail('fsconfig create', entry.target);
  const mfd = sysLong3(NR.fsmount, fsfd, FSMOUNT_CLOEXEC, entry.attrs);
  if (mfd < 0) fail('fsmount', entry.target);
  close(fsfd);
  // mountIdentityOf(), before move_mount as attach.ts reads it (a mount keeps its ids when moved):
  // the reusable id, then the unique one (kernel 6.8+).
  statxOrFail(mfd, '', AT_EMPTY_PATH, STATX.MNT_ID, entry.target);
  record.idLo = lo(144);
  record.idHi = hi(144);
  statxOrFail(mfd, '', AT_EMPTY_PATH, STATX.MNT_ID_UNIQUE, entry.target);
  record.hasUnique = (st.readUInt32LE(0) & STATX.MNT_ID_UNIQUE) !== 0;
  record.uniqueLo = lo(144);
  record.uniqueHi = hi(144);
  if (sysMoveMount(NR.moveMount, mfd, '', target, '', MOVE_MOUNT_EMPTY_PATHS) < 0) fail('move_mount', entry.target);
  // mountIsAtTarget(): the topmost mount at the target is the one just made.
  const now = sysOpenat2(NR.openat2, root, entry.target, HOW_TOP, 24);
  if (now < 0) fail('openat2', entry.target);
  if (!isOurMount(now, record, entry.target)) throw new Error(`raw-koffi: ${entry.target}: not at its target after move_mount`);
  close(now);
  if (entry.covers) coverMount(mfd, COVERS[entry.covers]);
  close(mfd);
  close(target);
  return record;
}

/** coverMount(): each name beneath the proc or sysfs mount fd, skipped when absent, covered, ids read back. */
function coverMount(mfd, covers) {
  for (const cover of covers) {
    const at = sysOpenat2(NR.openat2, mfd, cover.name, cover.directory ? HOW_COVER_DIR : HOW_COVER_FILE, 24);
    if (at < 0) {
      if (koffi.errno() === ENOENT) continue;
      fail('openat2', cover.name);
    }
    let m;
    if (cover.how === 'readonly') {
      m = sysOpenTree(NR.openTree, at, '', OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH);
      if (m < 0) fail('open_tree', cover.name);
      if (sysMountSetattr(NR.mountSetattr, m, '', AT_EMPTY_PATH, ATTR_READONLY, 32) < 0) fail('mount_setattr', cover.name);
    } else if (!cover.directory) {
      m = sysOpenTree(NR.openTree, AT_FDCWD, '/dev/null', OPEN_TREE_CLONE | O_CLOEXEC);
      if (m < 0) fail('open_tree', '/dev/null');
      if (sysMountSetattr(NR.mountSetattr, m, '', AT_EMPTY_PATH, ATTR_MASKED_FILE, 32) < 0) fail('mount_setattr', cover.name);
    } else {
      const fsfd = sysFsopen(NR.fsopen, 'tmpfs', FSOPEN_CLOEXEC);
      if (fsfd < 0) fail('fsopen', cover.name);
      if (sysFsconfig(NR.fsconfig, fsfd, FSCONFIG_CMD_CREATE, null, null, 0) < 0) fail('fsconfig create', cover.name);
      m = sysLong3(NR.fsmount, fsfd, FSMOUNT_CLOEXEC, COVER_ATTRS.maskedDirectory);
      if (m < 0) fail('fsmount', cover.name);
      close(fsfd);
    }
    if (sysMoveMount(NR.moveMount, m, '', at, '', MOVE_MOUNT_EMPTY_PATHS) < 0) fail('move_mount', cover.name);
    // mountIdentityOf(), as for any mount (the record keeps both ids).
    statxOrFail(m, '', AT_EMPTY_PATH, STATX.MNT_ID, cover.name);
    statxOrFail(m, '', AT_EMPTY_PATH, STATX.MNT_ID_UNIQUE, cover.name);
    close(m);
    close(at);
  }
}

/** isOurMount(): one statx, by the unique id when there is one. */
function isOurMount(fd, record, what) {
  if (record.hasUnique) {
    statxOrFail(fd, '', AT_EMPTY_PATH, STATX.MNT_ID_UNIQUE, what);
    if (st.readUInt32LE(0) & STATX.MNT_ID_UNIQUE) return lo(144) === record.uniqueLo && hi(144) === record.uniqueHi;
  }
  statxOrFail(fd, '', AT_EMPTY_PATH, STATX.MNT_ID, what);
  return lo(144) === record.idLo && hi(144) === record.idHi;
}

/** detachOne() + removeCreatedDirs(): a top-level directory's parent is the root fd itself. */
function detachOne(root, entry, record) {
  const top = sysOpenat2(NR.openat2, root, entry.target, HOW_TOP, 24);
  if (top < 0) fail('openat2', entry.target);
  if (!isOurMount(top, record, entry.target)) throw new Error(`raw-koffi: ${entry.target}: not the mount attach made`);
  if (umount2(`/proc/thread-self/fd/${top}`, MNT_DETACH) < 0) fail('umount2', entry.target);
  close(top);
  if (!record.created) return;
  statxOrFail(root, entry.target, AT_SYMLINK_NOFOLLOW, STATX.INO | STATX.TYPE, entry.target);
  if ((st.readUInt16LE(28) & S_IFMT) !== S_IFDIR || lo(32) !== record.inoLo || hi(32) !== record.inoHi) {
    throw new Error(`raw-koffi: ${entry.target}: replaced by another directory`);
  }
  if (unlinkat(root, entry.target, AT_REMOVEDIR) < 0) fail('unlinkat', entry.target);
}

/** Open the root once, as the engine's callers do: a plain path, outside the timed loop. */
export function openRawRoot(dir) {
  const fd = sysOpenat2(NR.openat2, AT_FDCWD, dir, HOW_ROOT, 24);
  if (fd < 0) fail('openat2', dir);
  return fd;
}

export function closeRawRoot(fd) {
  close(fd);
}

/** One attach+detach of the default plan. */
export function rawCycle(root) {
  const identity = rootIdentity(root);
  const records = PLAN.map((entry) => attachOne(root, entry));
  if (rootIdentity(root) !== identity) throw new Error('raw-koffi: the root changed between attach and detach');
  for (let i = PLAN.length - 1; i >= 0; i--) detachOne(root, PLAN[i], records[i]);
}

function main(argv) {
  const [dir, cycles, reps, warmup] = [argv[0], ...argv.slice(1).map(Number)];
  if (argv.length !== 4 || !(cycles >= 1 && reps >= 0 && warmup >= 0)) throw new Error('usage: node bench/raw-koffi.mjs ROOT CYCLES REPS WARMUP');
  const root = openRawRoot(dir);
  for (let i = 0; i < warmup; i++) rawCycle(root);
  for (let r = 0; r < reps; r++) console.log(formatBatch(timeBatch(() => rawCycle(root), cycles)));
  closeRawRoot(root);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
