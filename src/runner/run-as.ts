// runCommandsAs in a user namespace that is not the host's (a container with hostUsers: false,
// podman --userns=auto): a uid or gid the namespace does not map cannot be taken (setresuid and
// setgroups answer EINVAL), so every action would fail at its credentials step. Refused at
// start-up instead, in one line naming it and the map.
import { readFileSync } from 'node:fs';
import { idMapped } from '../linux/index.js';
import { ConfigError, type Settings } from './config.js';

function map(file: 'uid_map' | 'gid_map'): string {
  try {
    return readFileSync(`/proc/self/${file}`, 'utf8');
  } catch {
    return '';
  }
}

const oneLine = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).join(' '))
    .join('; ');

export function refuseUnmappedRunAs(runAs: Settings['runAs'], uidMap = map('uid_map'), gidMap = map('gid_map')): void {
  if (!runAs || uidMap === '') return;
  const fix = "map it in the container's user namespace (Kubernetes maps 0-65535 with hostUsers: false), or run actions as a mapped id";
  if (!idMapped(uidMap, runAs.uid))
    throw new ConfigError(`config.runCommandsAs.userId ${runAs.uid} is not mapped in this user namespace (uid_map: ${oneLine(uidMap)}): ${fix}`);
  for (const [name, gid] of [['groupId', runAs.gid] as const, ...runAs.groups.map((g, i) => [`additionalGroupIds[${i}]`, g] as const)]) {
    if (!idMapped(gidMap, gid))
      throw new ConfigError(`config.runCommandsAs.${name} ${gid} is not mapped in this user namespace (gid_map: ${oneLine(gidMap)}): ${fix}`);
  }
}
