// The static test programs of test/fixtures/: the attacker, copied into the action roots that use
// it, and a seccomp wrapper; each built once per test file.
import { execFileSync } from 'node:child_process';
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
