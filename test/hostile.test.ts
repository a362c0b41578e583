// Roots whose content tries to send a mount elsewhere. Each is refused or handled safely:
// the whole mount table is unchanged, and the directory outside the root is untouched.
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attach, detach, parsePlan } from '../src/mounts/index.js';
import { busyboxRoot, mountTable, mountsUnder, openDir, removeTree, scratchDir } from './helpers/roots.js';

let root: string;
let outside: string;
beforeEach(() => {
  root = busyboxRoot();
  outside = scratchDir('mountat-outside-');
  writeFileSync(join(outside, 'precious'), 'must stay');
});
afterEach(() => {
  removeTree(root);
  removeTree(outside);
});

function expectRefused(plan: unknown, message: RegExp): void {
  const before = mountTable();
  using rootFd = openDir(root);
  expect(() => attach(rootFd, parsePlan(plan))).toThrow(message);
  expect(mountTable()).toBe(before);
  expect(readdirSync(outside)).toEqual(['precious']);
}

describe('hostile roots', () => {
  it('refuses `proc` as a symlink to a directory outside the root', () => {
    symlinkSync(outside, join(root, 'proc'));
    expectRefused({ mounts: [{ target: 'proc', kind: 'proc' }] }, /resolve `proc`: openat2: ELOOP — a component is a symlink/);
    expect(readlinkSync(join(root, 'proc'))).toBe(outside);
  });

  it('refuses `proc` as a relative symlink climbing out with ..', () => {
    symlinkSync('../../../../../..' + outside, join(root, 'proc'));
    expectRefused({ mounts: [{ target: 'proc', kind: 'proc' }] }, /resolve `proc`: openat2: ELOOP/);
  });

  it('refuses a parent component that is a symlink outside (a in a/proc)', () => {
    symlinkSync(outside, join(root, 'a'));
    expectRefused({ mounts: [{ target: 'a/proc', kind: 'proc' }] }, /resolve `a\/proc`: openat2: ELOOP — a component is a symlink/);
    expect(existsSync(join(outside, 'proc'))).toBe(false);
  });

  it('refuses a symlink that stays inside the root, creating nothing', () => {
    mkdirSync(join(root, 'real-proc'));
    symlinkSync('real-proc', join(root, 'proc'));
    expectRefused({ mounts: [{ target: 'proc', kind: 'proc' }] }, /ELOOP/);
    expect(readdirSync(join(root, 'real-proc'))).toEqual([]);
  });

  it('refuses a target that is a regular file', () => {
    writeFileSync(join(root, 'proc'), 'not a directory');
    expectRefused({ mounts: [{ target: 'proc', kind: 'proc' }] }, /resolve `proc`: openat2: ENOTDIR — a component is not a directory/);
  });

  it('refuses a parent that is a regular file', () => {
    writeFileSync(join(root, 'dev'), 'not a directory');
    expectRefused({ mounts: [{ target: 'dev/shm', kind: 'tmpfs' }] }, /ENOTDIR/);
  });

  it('refuses .. in a target before touching the root', () => {
    expect(() => parsePlan({ mounts: [{ target: '../outside', kind: 'tmpfs' }] })).toThrow(/targets must stay beneath the root/);
  });

  it('refuses a target that is already a mount point', () => {
    using rootFd = openDir(root);
    const first = attach(rootFd, parsePlan({ mounts: [{ target: 'tmp', kind: 'tmpfs' }] }));
    try {
      expectRefused({ mounts: [{ target: 'tmp', kind: 'tmpfs' }] }, /resolve `tmp`: openat2: EXDEV — the path crosses or is already a mount point/);
    } finally {
      detach(rootFd, first);
    }
  });

  it('symlinks planted after the plan was made are refused at attach, the rest rolled back', () => {
    symlinkSync(outside, join(root, 'sys'));
    expectRefused(
      {
        mounts: [
          { target: 'proc', kind: 'proc' },
          { target: 'sys', kind: 'sysfs' },
        ],
      },
      /resolve `sys`: openat2: ELOOP/,
    );
    expect(existsSync(join(root, 'proc'))).toBe(false);
  });
});

describe('odd names and shapes', () => {
  it('mounts at the end of a 200-deep path it creates, and removes every directory again', () => {
    const before = mountTable();
    using rootFd = openDir(root);
    const target = `${'d/'.repeat(200)}proc`;
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target, kind: 'proc' }] }));
    expect(attachment.mounts[0]?.createdDirs).toHaveLength(201);
    expect(detach(rootFd, attachment).removed).toHaveLength(201);
    expect(mountTable()).toBe(before);
    expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  });

  it('refuses a path longer than PATH_MAX and a name longer than NAME_MAX before touching anything', () => {
    expect(() => parsePlan({ mounts: [{ target: 'd/'.repeat(2100) + 'x', kind: 'tmpfs' }] })).toThrow(
      /plan.mounts\[0\].target must NOT have more than 4096 characters/,
    );
    expect(() => parsePlan({ mounts: [{ target: 'é'.repeat(128), kind: 'tmpfs' }] })).toThrow(/component longer than 255 bytes/);
  });

  it('handles a name with a newline and refuses one that is not valid Unicode', () => {
    using rootFd = openDir(root);
    const attachment = attach(rootFd, parsePlan({ mounts: [{ target: 'new\nline', kind: 'tmpfs' }] }));
    expect(mountsUnder(root)).toEqual([join(root, 'new\\012line')]);
    detach(rootFd, attachment);
    expect(() => parsePlan({ mounts: [{ target: 'bad\uD800name', kind: 'tmpfs' }] })).toThrow(/is not valid Unicode/);
  });

  it('refuses a hard link to a file outside the root as a target, leaving the file alone', () => {
    linkSync(join(outside, 'precious'), join(root, 'proc'));
    expectRefused({ mounts: [{ target: 'proc', kind: 'proc' }] }, /resolve `proc`: openat2: ENOTDIR/);
    expect(readFileSync(join(outside, 'precious'), 'utf8')).toBe('must stay');
  });
});
