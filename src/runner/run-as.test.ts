import { describe, expect, it } from 'vitest';
import { refuseUnmappedRunAs } from './run-as.js';

const HOST = '         0          0 4294967295\n';
const AUTO = '         0     100000      65536\n';

describe('runCommandsAs in a user namespace', () => {
  it('takes any id in the host user namespace, and a mapped one in another', () => {
    expect(() => refuseUnmappedRunAs({ uid: 4000000, gid: 4000000, groups: [] }, HOST, HOST)).not.toThrow();
    expect(() => refuseUnmappedRunAs({ uid: 65534, gid: 65534, groups: [1000] }, AUTO, AUTO)).not.toThrow();
    expect(() => refuseUnmappedRunAs(undefined, AUTO, AUTO)).not.toThrow();
  });

  it('refuses an unmapped uid, gid or group in one line naming it and the map', () => {
    expect(() => refuseUnmappedRunAs({ uid: 70000, gid: 0, groups: [] }, AUTO, AUTO)).toThrow(
      /^config\.runCommandsAs\.userId 70000 is not mapped in this user namespace \(uid_map: 0 100000 65536\): map it/,
    );
    expect(() => refuseUnmappedRunAs({ uid: 1, gid: 65536, groups: [] }, AUTO, AUTO)).toThrow(/^config\.runCommandsAs\.groupId 65536 is not mapped/);
    expect(() => refuseUnmappedRunAs({ uid: 1, gid: 1, groups: [5, 99999] }, AUTO, AUTO)).toThrow(/^config\.runCommandsAs\.additionalGroupIds\[1\] 99999/);
  });
});
