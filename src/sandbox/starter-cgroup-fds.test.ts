// The cgroup's fds follow the protocol's six in the order starterFds() gives them, and the
// command line names them by those numbers: the two must agree, or the starter's child would
// write "0" into the wrong fd (native/starter/cgroup.c).
import { describe, expect, it } from 'vitest';
import { SANDBOX_DEFAULTS } from './defaults.js';
import { starterArguments, starterFds } from './starter.js';

const base = {
  argv: ['true'],
  workingDirectory: '.',
  isolation: {
    pidNamespace: true,
    root: 'pivot' as const,
    network: 'host' as const,
    capabilities: 0n,
    userNamespaces: SANDBOX_DEFAULTS.userNamespaces,
    allowSyscalls: [],
  },
};
const PROTOCOL = [10, 11, 12, 13, 14, 15];

describe("the starter's cgroup fds", () => {
  it('number the v2 directory 6 and the v1 cgroup.procs files after it (a hybrid host)', () => {
    const cgroup = { directory: 40, procs: [41, 42, 43] };
    expect(starterFds(PROTOCOL, cgroup)).toEqual([...PROTOCOL, 40, 41, 42, 43]);
    expect(starterArguments({ ...base, cgroup, oomScoreAdj: 1000 })).toEqual([
      'mountat-action',
      '--pidns',
      '--caps',
      '0',
      '--cgroup',
      '6',
      '--join',
      '7,8,9',
      '--oom-score-adj',
      '1000',
      '--',
      'true',
    ]);
  });

  it('start the v1 files at 6 where there is no v2 tree, and name none without a cgroup', () => {
    const cgroup = { procs: [41, 42] };
    expect(starterFds(PROTOCOL, cgroup)).toEqual([...PROTOCOL, 41, 42]);
    expect(starterArguments({ ...base, cgroup })).toEqual(['mountat-action', '--pidns', '--caps', '0', '--join', '6,7', '--', 'true']);
    expect(starterFds(PROTOCOL, undefined)).toEqual(PROTOCOL);
    expect(starterArguments({ ...base, oomScoreAdj: -5 })).toEqual(['mountat-action', '--pidns', '--caps', '0', '--oom-score-adj', '-5', '--', 'true']);
    expect(starterArguments({ ...base, oomScoreAdj: null })).toEqual(['mountat-action', '--pidns', '--caps', '0', '--', 'true']);
    expect(starterArguments({ ...base, nice: 10 })).toEqual(['mountat-action', '--pidns', '--caps', '0', '--nice', '10', '--', 'true']);
    expect(starterArguments({ ...base, nice: 0 })).toEqual(['mountat-action', '--pidns', '--caps', '0', '--nice', '0', '--', 'true']);
    expect(starterArguments({ ...base, nice: null })).toEqual(['mountat-action', '--pidns', '--caps', '0', '--', 'true']);
  });
});
