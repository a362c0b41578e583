import { describe, expect, it } from 'vitest';
import { REFUSED_SYSCALLS, whyNotAllowable } from './seccomp-policy.js';

describe("the seccomp filter's table", () => {
  it('names each call once, each with a reason', () => {
    const names = REFUSED_SYSCALLS.map((entry) => entry.name);
    expect(new Set(names).size).toBe(names.length);
    for (const entry of REFUSED_SYSCALLS) expect(entry.why.length, entry.name).toBeGreaterThan(0);
  });

  it('keeps user namespaces closed by unshare, clone, clone3 and setns, clone3 with ENOSYS for glibc to fall back on', () => {
    const closing = REFUSED_SYSCALLS.filter((entry) => entry.rule === 'user-namespaces');
    expect(closing.map((entry) => `${entry.name} ${entry.errno}`).sort()).toEqual(['clone EPERM', 'clone3 ENOSYS', 'setns EPERM', 'unshare EPERM']);
  });

  it.each([
    ['io_uring_setup', undefined],
    ['personality', undefined],
    ['mount', undefined],
    ['read', "mountat's seccomp filter does not refuse it"],
    ['IO_URING_SETUP', "mountat's seccomp filter does not refuse it"],
    ['clone3', 'it is refused to keep user namespaces closed: OPTION opens them'],
    ['setns', 'it is refused to keep user namespaces closed: OPTION opens them'],
  ])('allowing %s back: %s', (name, why) => {
    expect(whyNotAllowable(name, 'OPTION')).toBe(why);
  });
});
