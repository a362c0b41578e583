import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultActionThreads, refuseReachableListeners, settingsFrom } from './config.js';

const minimal = { buildDirectoryPath: '/worker/build', grpcServers: [{ listenPaths: ['/worker/runner'] }] };

describe('settingsFrom', () => {
  it("gives a minimal bb_runner config mountat's defaults", () => {
    const settings = settingsFrom(minimal);
    expect(settings).toMatchObject({
      buildDirectoryPath: '/worker/build',
      listenPaths: ['/worker/runner'],
      listenAddresses: [],
      setTmpdir: true,
      chroot: true,
      runAs: undefined,
      readinessPaths: [],
      temporaryDirectoryMount: 'tmp',
      pidNamespace: true,
      capabilities: ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP'],
      network: 'host',
      userNamespaces: false,
      allowSyscalls: [],
      hooks: { prestart: ['mountat'], poststop: ['mountat'] },
      stateDirectory: '/run/mountat/runner',
      ignored: [],
      limits: { pids: 4096, memoryBytes: null, cpu: null, oomScoreAdj: 1000, nice: 10 },
      requiredLimits: [],
      cgroupParent: undefined,
    });
    expect(settings.plan.mounts.map((m) => `${m.kind}:${m.target}:${m.attributes.readOnly}`)).toEqual(['proc:proc:false', 'sysfs:sys:true']);
  });

  it('takes the limits the config sets as ones to enforce, and null as no limit', () => {
    const settings = settingsFrom({
      ...minimal,
      limits: { memoryBytes: 1 << 30, cpu: { quota: 1.5 }, pids: null, oomScoreAdj: null, nice: null },
      cgroupParent: '/builds',
    });
    expect(settings.limits).toEqual({ pids: null, memoryBytes: 1 << 30, cpu: { quota: 1.5, weight: undefined }, oomScoreAdj: null, nice: null });
    // nice is the actions' priority, not a bound the cgroup enforces: never a limit to refuse the start over.
    expect(settingsFrom({ ...minimal, limits: { nice: 3 } })).toMatchObject({ limits: { nice: 3 }, requiredLimits: [] });
    expect(settings.requiredLimits).toEqual(['memoryBytes', 'cpu']);
    expect(settings.cgroupParent).toBe('/builds');
    expect(settingsFrom({ ...minimal, limits: { pids: 256 } }).requiredLimits).toEqual(['pids']);
  });

  it('refuses a limit out of range in one line naming it', () => {
    expect(() => settingsFrom({ ...minimal, limits: { memoryBytes: 1024 } })).toThrow(/^config\.limits\.memoryBytes.*4194304/);
    expect(() => settingsFrom({ ...minimal, limits: { cpu: {} } })).toThrow(/^config\.limits\.cpu/);
    expect(() => settingsFrom({ ...minimal, limits: { nice: 20 } })).toThrow(/^config\.limits\.nice.*19/);
    expect(() => settingsFrom({ ...minimal, limits: { nice: -1 } })).toThrow(/^config\.limits\.nice.*0/);
    expect(() => settingsFrom({ ...minimal, limits: { pids: 0 } })).toThrow(/^config\.limits\.pids/);
    expect(() => settingsFrom({ ...minimal, cgroupParent: 'relative' })).toThrow(/^config\.cgroupParent/);
  });

  it("carries an operator's bb_runner options over, noting the ones it does not use", () => {
    const settings = settingsFrom({
      ...minimal,
      // Not rooted, the actions would see a socket: TCP, with networks of their own (listeners.ts).
      grpcServers: [{ listenAddresses: ['127.0.0.1:8980'], authenticationPolicy: { allow: {} } }],
      network: 'none',
      global: { logPaths: ['/var/log/bb'] },
      chrootIntoInputRoot: false,
      setTmpdirEnvironmentVariable: false,
      runCommandsAs: { userId: 1000, groupId: 1000, additionalGroupIds: [5] },
      readinessCheckingPathnames: ['/worker/ready'],
      temporaryDirectories: ['/tmp'],
    });
    expect(settings).toMatchObject({ chroot: false, setTmpdir: false, runAs: { uid: 1000, gid: 1000, groups: [5] }, readinessPaths: ['/worker/ready'] });
    expect(settings.ignored).toEqual(['global.logPaths', 'temporaryDirectories']);
  });

  it('carries user namespaces and system calls allowed back', () => {
    expect(settingsFrom({ ...minimal, allowUserNamespaces: true, allowSyscalls: ['io_uring_setup', 'personality'] })).toMatchObject({
      userNamespaces: true,
      allowSyscalls: ['io_uring_setup', 'personality'],
    });
  });

  const bad: Array<[string, unknown, string]> = [
    ['no build directory', { grpcServers: minimal.grpcServers }, "config must have required property 'buildDirectoryPath'"],
    ['a relative build directory', { ...minimal, buildDirectoryPath: 'build' }, 'config.buildDirectoryPath must match ^/ (got "build")'],
    ['no listener', { ...minimal, grpcServers: [{}] }, 'config.grpcServers: give at least one listenPaths or listenAddresses entry'],
    ['a misspelt option', { ...minimal, chrootIntoInputroot: true }, 'config has an unknown field "chrootIntoInputroot"'],
    ['a bad mount', { ...minimal, mounts: [{ target: '/proc', kind: 'proc' }] }, 'config.mounts[0]: target "/proc" is absolute'],
    [
      'a temporary directory mount on a mount',
      { ...minimal, temporaryDirectoryMount: 'proc' },
      'config.temporaryDirectoryMount: target repeats the earlier target "proc"',
    ],
    ['a bad hook', { ...minimal, hooks: { prestart: ['bubblewrap'] } }, 'config.hooks.prestart[0]'],
    ['a negative uid', { ...minimal, runCommandsAs: { userId: -1, groupId: 0 } }, 'config.runCommandsAs.userId must be >= 0 (got -1)'],
    ['an unknown capability', { ...minimal, capabilities: ['CAP_CHOWN', 'CHOWN'] }, 'config.capabilities[1] must be one of "CAP_CHOWN", "CAP_DAC_OVERRIDE"'],
    ['a capability twice', { ...minimal, capabilities: ['CAP_CHOWN', 'CAP_CHOWN'] }, 'config.capabilities must NOT have duplicate items'],
    ['an unknown network', { ...minimal, network: 'bridge' }, 'config.network must be one of "host", "none" (got "bridge")'],
    [
      'a system call the filter does not refuse',
      { ...minimal, allowSyscalls: ['read'] },
      'config.allowSyscalls: "read": mountat\'s seccomp filter does not refuse it',
    ],
    [
      'a system call that keeps user namespaces closed',
      { ...minimal, allowSyscalls: ['unshare'] },
      'config.allowSyscalls: "unshare": it is refused to keep user namespaces closed: allowUserNamespaces opens them',
    ],
    ['a system call twice', { ...minimal, allowSyscalls: ['bpf', 'bpf'] }, 'config.allowSyscalls must NOT have duplicate items'],
  ];
  it.each(bad)('refuses %s in one line', (_name, json, message) => {
    expect(() => settingsFrom(json)).toThrow(ConfigError);
    expect(() => settingsFrom(json)).toThrow(message);
  });
});

describe('defaultActionThreads', () => {
  it('gives none below 4 CPUs, then one per CPU beside the main thread, at most 8', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 16, 64].map(defaultActionThreads)).toEqual([0, 0, 0, 3, 4, 7, 8, 8, 8]);
  });
});

describe('settingsFrom: no listener an action can reach (listeners.ts)', () => {
  const tcp = (address: string) => ({ ...minimal, grpcServers: [{ listenPaths: ['/worker/runner'], listenAddresses: [address] }] });
  const diagnostics = (address: string) => ({ ...minimal, global: { diagnosticsHttpServer: { httpServers: [{ listenAddresses: [address] }] } } });
  const onHostNetwork = 'every action can connect to it, on the runner\'s network (network "host")';
  const refused: Array<[string, unknown, string]> = [
    [
      'TCP on the host network',
      tcp('127.0.0.1:8980'),
      `config.grpcServers[0].listenAddresses[0] "127.0.0.1:8980": ${onHostNetwork}; listen on a UNIX socket (listenPaths), or give actions a network of their own (network "none")`,
    ],
    [
      'TCP on every address, in a second server',
      { ...minimal, grpcServers: [{ listenPaths: ['/w/r'] }, { listenAddresses: [':8980'] }] },
      'config.grpcServers[1].listenAddresses[0] ":8980": ',
    ],
    [
      'an abstract socket on the host network',
      tcp('unix-abstract:runner'),
      `config.grpcServers[0].listenAddresses[0] "unix-abstract:runner": ${onHostNetwork}`,
    ],
    [
      'diagnostics on the host network',
      diagnostics(':9981'),
      `config.global.diagnosticsHttpServer.httpServers[0].listenAddresses[0] ":9981": ${onHostNetwork}; give actions a network of their own (network "none"), or remove global.diagnosticsHttpServer`,
    ],
    [
      'a socket path given as an address',
      { ...tcp('unix:///worker/runner2'), network: 'none' },
      'config.grpcServers[0].listenAddresses[0] "unix:///worker/runner2": a UNIX socket goes in listenPaths',
    ],
    [
      'a socket in the build directory',
      { ...minimal, grpcServers: [{ listenPaths: ['/worker/build/runner'] }] },
      'config.grpcServers[0].listenPaths[0] "/worker/build/runner": inside buildDirectoryPath "/worker/build", where a Run\'s input root or temporary directory can contain it; listen outside buildDirectoryPath',
    ],
    [
      'a socket in the build directory, by ..',
      { ...minimal, grpcServers: [{ listenPaths: ['/worker/x/../build/a/runner'] }] },
      '(/worker/build/a/runner): inside buildDirectoryPath',
    ],
    [
      'a socket beneath a bind source',
      {
        ...minimal,
        mounts: [
          { target: 'proc', kind: 'proc' },
          { target: 'cache', kind: 'bind', source: '/worker' },
        ],
      },
      'config.grpcServers[0].listenPaths[0] "/worker/runner": beneath config.mounts[1]\'s bind source "/worker", mounted into every action\'s root; listen outside it',
    ],
    [
      'a socket with chrootIntoInputRoot false',
      { ...minimal, chrootIntoInputRoot: false },
      'config.grpcServers[0].listenPaths[0] "/worker/runner": with chrootIntoInputRoot false every action sees the runner\'s filesystem, this socket included; root actions in their input roots (chrootIntoInputRoot true), or listen on TCP (listenAddresses) with network "none"',
    ],
  ];
  it.each(refused)('refuses %s in one line naming it and the fix', (_name, json, message) => {
    expect(() => settingsFrom(json)).toThrow(ConfigError);
    expect(() => settingsFrom(json)).toThrow(message);
  });

  const accepted: Array<[string, unknown]> = [
    ['TCP and diagnostics with network "none"', { ...tcp('127.0.0.1:8980'), ...diagnostics(':9981'), network: 'none' }],
    ['an abstract socket with network "none"', { ...tcp('unix-abstract:runner'), network: 'none' }],
    ['a socket beside the build directory whose name starts the same', { ...minimal, grpcServers: [{ listenPaths: ['/worker/build2/runner'] }] }],
    ['a bind source beside the socket', { ...minimal, mounts: [{ target: 'cache', kind: 'bind', source: '/worker/cache' }] }],
    [
      'chrootIntoInputRoot false with TCP only and network "none"',
      { ...minimal, chrootIntoInputRoot: false, network: 'none', grpcServers: [{ listenAddresses: ['127.0.0.1:8980'] }] },
    ],
  ];
  it.each(accepted)('accepts %s', (_name, json) => {
    expect(settingsFrom(json).listeners.length).toBeGreaterThan(0);
  });

  it('refuses, with symlinks resolved, a socket whose directory leads into the build directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mountat-listeners-'));
    try {
      mkdirSync(join(dir, 'build', 'sockets'), { recursive: true });
      symlinkSync(join(dir, 'build', 'sockets'), join(dir, 'link'));
      const settings = settingsFrom({ buildDirectoryPath: join(dir, 'build'), grpcServers: [{ listenPaths: [join(dir, 'link', 'runner.sock')] }] });
      expect(() => refuseReachableListeners(settings)).toThrow(
        `config.grpcServers[0].listenPaths[0] ${JSON.stringify(join(dir, 'link', 'runner.sock'))} (${join(dir, 'build', 'sockets', 'runner.sock')}): inside buildDirectoryPath`,
      );
      // The same through a build directory named by a symlink, and a socket whose directory does not exist yet.
      symlinkSync(join(dir, 'build'), join(dir, 'build-link'));
      const viaLink = settingsFrom({ buildDirectoryPath: join(dir, 'build-link'), grpcServers: [{ listenPaths: [join(dir, 'build', 'new', 'runner.sock')] }] });
      expect(() => refuseReachableListeners(viaLink)).toThrow(`inside buildDirectoryPath ${JSON.stringify(join(dir, 'build'))}`);
      const beside = settingsFrom({ buildDirectoryPath: join(dir, 'build'), grpcServers: [{ listenPaths: [join(dir, 'runner.sock')] }] });
      expect(() => refuseReachableListeners(beside)).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
