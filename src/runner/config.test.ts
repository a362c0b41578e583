import { describe, expect, it } from 'vitest';
import { ConfigError, settingsFrom } from './config.js';

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
      hooks: { prestart: ['mountat'], poststop: ['mountat'] },
      stateDirectory: '/run/mountat/runner',
      ignored: [],
    });
    expect(settings.plan.mounts.map((m) => `${m.kind}:${m.target}:${m.attributes.readOnly}`)).toEqual(['proc:proc:false', 'sysfs:sys:true']);
  });

  it("carries an operator's bb_runner options over, noting the ones it does not use", () => {
    const settings = settingsFrom({
      ...minimal,
      grpcServers: [{ listenPaths: ['/worker/runner'], authenticationPolicy: { allow: {} } }],
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
  ];
  it.each(bad)('refuses %s in one line', (_name, json, message) => {
    expect(() => settingsFrom(json)).toThrow(ConfigError);
    expect(() => settingsFrom(json)).toThrow(message);
  });
});
