import { describe, expect, it } from 'vitest';
import { capabilityMask } from '../linux/capabilities.js';
import { actionCapabilities, DEFAULT_ACTION_CAPABILITIES, REACHES_OUTSIDE } from './capabilities.js';
import { prepareIsolation } from './isolation.js';
import { checkPrivileges, requiredCapabilities } from './privileges.js';
import { SANDBOX_DEFAULTS } from './defaults.js';
import { RootChangeError } from './root-change.js';
import { starterArguments } from './starter.js';

const ALL = (1n << 41n) - 1n;
const sets = (bounding: bigint, effective = bounding) => ({ effective, permitted: effective, bounding });

describe("an action's capabilities", () => {
  it('by default: what builds do as root, none that acts outside its namespaces', () => {
    expect(capabilityMask(DEFAULT_ACTION_CAPABILITIES)).toBe(0x1fbn);
    for (const name of DEFAULT_ACTION_CAPABILITIES) expect(REACHES_OUTSIDE[name], name).toBeUndefined();
    for (const name of [
      'CAP_SYS_ADMIN',
      'CAP_MKNOD',
      'CAP_SYS_PTRACE',
      'CAP_SYS_MODULE',
      'CAP_SYS_RAWIO',
      'CAP_NET_ADMIN',
      'CAP_SYS_TIME',
      'CAP_SYS_CHROOT',
      'CAP_DAC_READ_SEARCH',
    ] as const) {
      expect(REACHES_OUTSIDE[name], name).toBeDefined();
    }
    expect(actionCapabilities(DEFAULT_ACTION_CAPABILITIES, sets(ALL))).toEqual({ mask: 0x1fbn, lacking: [], reachingOutside: [] });
  });

  it('never more than the caller has, and says which it lacks', () => {
    // The Kubernetes example's runner before it was given the action's set: SYS_ADMIN and SYS_CHROOT only.
    const runner = capabilityMask(['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT']);
    const result = actionCapabilities(DEFAULT_ACTION_CAPABILITIES, sets(runner));
    expect(result.mask).toBe(0n);
    expect(result.lacking).toEqual([...DEFAULT_ACTION_CAPABILITIES]);
  });

  it('names what an operator grants that acts outside, except network ones in a network of its own', () => {
    expect(actionCapabilities(['CAP_SYS_ADMIN', 'CAP_NET_RAW', 'CAP_CHOWN'], sets(ALL)).reachingOutside).toEqual(['CAP_SYS_ADMIN', 'CAP_NET_RAW']);
    expect(actionCapabilities(['CAP_SYS_ADMIN', 'CAP_NET_RAW'], sets(ALL), 'none').reachingOutside).toEqual(['CAP_SYS_ADMIN']);
  });
});

describe('what the caller needs', () => {
  it('names every missing capability with why, in one line', () => {
    expect(requiredCapabilities({ runAs: undefined, network: 'host', root: 'pivot' }).map(([name]) => name)).toEqual(['CAP_SYS_ADMIN', 'CAP_SETPCAP']);
    expect(requiredCapabilities({ runAs: undefined, network: 'host', root: 'chroot' }).map(([name]) => name)).toEqual([
      'CAP_SYS_ADMIN',
      'CAP_SETPCAP',
      'CAP_SYS_CHROOT',
    ]);
    expect(() => checkPrivileges({ runAs: { uid: 1, gid: 1, groups: [] }, network: 'none', root: 'pivot' }, sets(capabilityMask(['CAP_SYS_ADMIN'])))).toThrow(
      'the runner lacks CAP_SETPCAP (to reduce each action\'s capabilities), CAP_SETUID (for runCommandsAs), CAP_SETGID (for runCommandsAs), CAP_NET_ADMIN (to bring up loopback in each action\'s network namespace (network "none")); run it as root, or add them to its container',
    );
    expect(() => checkPrivileges({ runAs: undefined, network: 'host', root: 'pivot' }, sets(ALL))).not.toThrow();
  });
});

describe("the starter's command line", () => {
  const defaults = { userNamespaces: SANDBOX_DEFAULTS.userNamespaces, allowSyscalls: SANDBOX_DEFAULTS.allowSyscalls };
  it('carries every isolation setting', () => {
    const base = { argv: ['sh', '-c', 'true'] };
    expect(
      starterArguments({
        ...base,
        workingDirectory: '.',
        isolation: { ...defaults, pidNamespace: true, root: 'pivot', network: 'host', capabilities: 0x1fbn },
      }),
    ).toEqual(['mountat-action', '--pidns', '--caps', '1fb', '--', 'sh', '-c', 'true']);
    expect(
      starterArguments({
        ...base,
        workingDirectory: 'a/b',
        forwardSignals: true,
        isolation: {
          pidNamespace: false,
          root: 'none',
          network: 'none',
          capabilities: 0n,
          runAs: { uid: 7, gid: 8, groups: [9, 10] },
          userNamespaces: true,
          allowSyscalls: ['io_uring_setup', 'personality'],
        },
      }),
    ).toEqual([
      'mountat-action',
      '--root',
      'none',
      '--cwd',
      'a/b',
      '--network',
      'none',
      '--caps',
      '0',
      '--uid',
      '7',
      '--gid',
      '8',
      '--groups',
      '9,10',
      '--allow-userns',
      '--allow-syscalls',
      'io_uring_setup,personality',
      '--forward-signals',
      '--',
      'sh',
      '-c',
      'true',
    ]);
  });
});

describe('how an action is rooted', () => {
  const probed = (pivotRoot: 'allowed' | 'refused') => ({ own: sets(ALL), pivotRoot, procPidns: true });
  const request = {
    rooted: true,
    pidNamespace: true,
    network: 'host' as const,
    capabilities: DEFAULT_ACTION_CAPABILITIES,
    runAs: undefined,
    userNamespaces: false,
    allowSyscalls: [],
  };

  it('by pivot_root where it is allowed, by chroot over the old root where it is refused, with a warning', () => {
    expect(prepareIsolation(request, probed('allowed'))).toEqual({
      isolation: { pidNamespace: true, root: 'pivot', network: 'host', capabilities: 0x1fbn, runAs: undefined, userNamespaces: false, allowSyscalls: [] },
      warnings: [],
    });
    const refused = prepareIsolation(request, probed('refused'));
    expect(refused.isolation.root).toBe('chroot');
    expect(refused.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^pivot_root is refused here/)]);
    expect(prepareIsolation({ ...request, rooted: false }, probed('refused')).isolation.root).toBe('none');
  });

  it('refuses a chroot to actions that could leave it', () => {
    for (const granted of [['CAP_SYS_CHROOT'], ['CAP_SYS_ADMIN'], ['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT']] as const) {
      expect(() => prepareIsolation({ ...request, capabilities: [...DEFAULT_ACTION_CAPABILITIES, ...granted] }, probed('refused'))).toThrow(RootChangeError);
    }
    expect(() => prepareIsolation({ ...request, capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT'] }, probed('refused'))).toThrow(
      'pivot_root is refused here (a seccomp profile?), and a chroot is no barrier to actions holding CAP_SYS_CHROOT and CAP_SYS_ADMIN: allow pivot_root, or do not grant them',
    );
    // runCommandsAs keeps nothing, whatever the list says.
    expect(prepareIsolation({ ...request, capabilities: ['CAP_SYS_ADMIN'], runAs: { uid: 1, gid: 1, groups: [] } }, probed('refused')).isolation).toMatchObject(
      { root: 'chroot', capabilities: 0n },
    );
  });

  it('passes on user namespaces and system calls allowed back, warning about each', () => {
    const result = prepareIsolation({ ...request, userNamespaces: true, allowSyscalls: ['perf_event_open', 'perf_event_open'] }, probed('allowed'));
    expect(result.isolation).toMatchObject({ userNamespaces: true, allowSyscalls: ['perf_event_open'] });
    expect(result.warnings.map((w) => w.detail)).toEqual([{ userNamespaces: true }, { syscalls: ['perf_event_open'] }]);
    expect(result.warnings[0]!.message).toMatch(/^actions may make user namespaces: every capability inside one/);
    expect(result.warnings[1]!.message).toBe("system calls mountat's seccomp filter refuses are allowed back for actions");
  });

  it('goes without a PID namespace, saying so, where proc cannot be made for one', () => {
    const result = prepareIsolation(request, { ...probed('allowed'), procPidns: false });
    expect(result.isolation.pidNamespace).toBe(false);
    expect(result.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/cannot mount a proc for another PID namespace/)]);
  });
});
