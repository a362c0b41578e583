// All or nothing: when an entry fails, what was attached before it is undone, and the error
// carries the kernel's own explanation.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { messageOf } from '../src/base/index.js';
import { AttachError, attach, parsePlan } from '../src/mounts/index.js';
import { instanceOf } from './helpers/checked.js';
import { busyboxRoot, mountTable, openDir, removeTree } from './helpers/roots.js';

let root: string;
beforeEach(() => {
  root = busyboxRoot();
});
afterEach(() => removeTree(root));

it('unmounts the first two entries when the third has an option the kernel refuses', () => {
  const before = mountTable();
  using rootFd = openDir(root);
  const plan = parsePlan({
    mounts: [
      { target: 'proc', kind: 'proc' },
      { target: 'sys', kind: 'sysfs' },
      { target: 'x/proc', kind: 'proc', options: { hidepid: 'bogus' } },
    ],
  });
  let error: unknown;
  try {
    attach(rootFd, plan);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(AttachError);
  expect(messageOf(error)).toBe('mount proc on `x/proc`: fsconfig: EINVAL (proc: unknown value of hidepid - bogus)');
  expect(instanceOf(error, AttachError).rollbackProblems).toEqual([]);
  expect(mountTable()).toBe(before);
  expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
  expect(existsSync(join(root, 'x'))).toBe(false);
});

it('reports a tmpfs size the kernel cannot parse, with nothing left behind', () => {
  const before = mountTable();
  using rootFd = openDir(root);
  const plan = parsePlan({
    mounts: [
      { target: 'tmp', kind: 'tmpfs' },
      { target: 'big', kind: 'tmpfs', options: { size: 'lots' } },
    ],
  });
  expect(() => attach(rootFd, plan)).toThrow(/^mount tmpfs on `big`: fsconfig: EINVAL \(.*size.*\)$/);
  expect(mountTable()).toBe(before);
  expect(readdirSync(root).sort()).toEqual(['bin', 'usr']);
});
