// The syscall layer's own contract: fds with one owner, errors that name call, errno and path.
import { describe, expect, it } from 'vitest';
import { messageOf } from '../src/base/index.js';
import {
  constants as C,
  Fd,
  openat2,
  probeSyscall,
  probeSyscalls,
  readFsContextLog,
  fsopen,
  fsconfigSetString,
  SyscallError,
  errnoName,
} from '../src/linux/index.js';

describe('Fd', () => {
  it('closes once, and hands ownership on with release()', () => {
    const fd = openat2(C.AT_FDCWD, '/', { flags: C.O_PATH | C.O_CLOEXEC, resolve: 0 });
    const number = fd.release();
    expect(fd.closed).toBe(true);
    expect(() => fd.fd).toThrow(/used after close or release/);
    const again = new Fd(number);
    again.close();
    again.close();
    expect(again.closed).toBe(true);
  });

  it('closes at the end of a using block', () => {
    let seen: Fd | undefined;
    {
      using fd = openat2(C.AT_FDCWD, '/', { flags: C.O_PATH | C.O_CLOEXEC, resolve: 0 });
      seen = fd;
      expect(fd.closed).toBe(false);
    }
    expect(seen.closed).toBe(true);
  });

  it('refuses what is not an fd', () => {
    expect(() => new Fd(-1)).toThrow(RangeError);
    expect(() => new Fd(1.5)).toThrow(RangeError);
  });
});

describe('SyscallError', () => {
  it('names the call, the errno and the path', () => {
    let error: unknown;
    try {
      openat2(C.AT_FDCWD, '/nonexistent-mountat', { flags: C.O_PATH, resolve: 0 }, 'nonexistent-mountat');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SyscallError);
    expect(error).toMatchObject({ syscall: 'openat2', code: 'ENOENT', errno: 2, path: 'nonexistent-mountat' });
    expect(messageOf(error)).toBe('openat2 `nonexistent-mountat`: ENOENT');
  });

  it("carries the kernel's own words from the filesystem context", () => {
    using fsfd = fsopen('tmpfs');
    expect(() => fsconfigSetString(fsfd, 'nonsense', 'x', 'tmp')).toThrow(/^fsconfig `tmp`: EINVAL \(tmpfs: Unknown parameter 'nonsense'\)$/);
    expect(readFsContextLog(fsfd)).toEqual([]);
  });

  it('keeps a path with a newline on one line (found by the property tests)', () => {
    expect(new SyscallError('openat2', 2, { path: 'a\n/proc' }).message).toBe('openat2 `a\\n/proc`: ENOENT');
  });

  it('names errnos, and numbers it does not know', () => {
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoName(11)).toBe('EAGAIN');
    expect(errnoName(9999)).toBe('errno 9999');
  });

  it('refuses a path with a NUL byte before calling the kernel', () => {
    expect(() => openat2(C.AT_FDCWD, 'a\0b', { flags: C.O_PATH, resolve: 0 })).toThrow(/NUL byte/);
  });
});

describe('probes', () => {
  it('tells present syscalls from missing ones (this kernel has them all)', () => {
    const names = probeSyscalls().map((p) => `${p.name}:${p.present}`);
    expect(names).toEqual(['openat2:true', 'open_tree:true', 'move_mount:true', 'fsopen:true', 'fsconfig:true', 'fsmount:true', 'mount_setattr:true']);
  });

  it('sees ENOSYS for a syscall number the kernel does not have', () => {
    expect(errnoName(probeSyscall(999, 'long', -1))).toBe('ENOSYS');
  });
});
