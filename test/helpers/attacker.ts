// The static test programs of test/fixtures/: the attacker, copied into the action roots that use
// it (and run on the host for the host's side of a check), and a seccomp wrapper; each built once
// per test file.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { repo, scratchDir } from './roots.js';

const built = new Map<string, string>();
const dirs: string[] = [];
// Imported at a test file's collection: the builds go when that file is done.
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  built.clear();
});

/** Build test/fixtures/NAME.c (cc -static), once per test file. */
export function fixtureBinary(name: string): string {
  const known = built.get(name);
  if (known) return known;
  const dir = scratchDir(`mountat-${name}-`);
  dirs.push(dir);
  // Runnable by any user: the host's side of a check may run it as an action's uid.
  chmodSync(dir, 0o755);
  const out = join(dir, name);
  execFileSync('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', out, join(repo, 'test', 'fixtures', `${name}.c`)]);
  built.set(name, out);
  return out;
}

/** The attacker, built. */
export const attackerBinary = () => fixtureBinary('attacker');

/** Put the attacker at /bin/attacker in an input root. */
export function installAttacker(root: string, name = 'attacker', mode = 0o755): string {
  const target = join(root, 'bin', name);
  copyFileSync(attackerBinary(), target);
  chmodSync(target, mode);
  return target;
}

/** "major:minor" of the device the host's / is on, from this namespace's mountinfo. */
export function rootDevice(): [number, number] {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((entry) => entry.split(' ')[4] === '/');
  const [major, minor] = (line?.split(' ')[2] ?? '0:0').split(':').map(Number);
  return [major!, minor!];
}

/** The attacker run on the host (outside any sandbox) as `uid`: itself as root, through setpriv as another uid. */
function onHost(uid: number, args: string[]): [string, string[]] {
  return uid === 0 ? [attackerBinary(), args] : ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', attackerBinary(), ...args]];
}

/** The user key `description` in the user keyring (@u) of `uid` (root unless given), as the attacker's helper adds, reads and removes it. */
export const hostKey = {
  add(description: string, data: string, uid = 0): void {
    execFileSync(...onHost(uid, ['host-key', 'add', description, data]));
  },
  /** Its payload, or "none: ENOKEY" where it is gone. */
  read(description: string, uid = 0): string {
    return spawnSync(...onHost(uid, ['host-key', 'read', description]), { encoding: 'utf8' }).stdout.trim();
  },
  remove(description: string, uid = 0): void {
    spawnSync(...onHost(uid, ['host-key', 'remove', description]));
  },
};

/** The bytes of key quota `uid` uses now, as the host's /proc/key-users counts them (0 where it has no key). */
export function keyQuotaBytes(uid: number): number {
  const line = readFileSync('/proc/key-users', 'utf8')
    .split('\n')
    .find((entry) => entry.trim().startsWith(`${uid}:`));
  // "uid: usage keys/instantiated quota-keys/max quota-bytes/max"
  return Number(line?.trim().split(/\s+/)[4]?.split('/')[0] ?? 0);
}

/** How many of `wanted` inotify instances a host process of `uid` can create now (outside any sandbox). */
export function hostInotifyInstances(uid: number, wanted: number): number {
  const result = spawnSync(...onHost(uid, ['inotify-count', String(wanted)]), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`inotify-count as ${uid}: ${result.stderr}`);
  return Number(result.stdout.trim());
}
