// The static attack program (test/fixtures/attacker.c), built once per test file and copied into
// the action roots that use it.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, scratchDir } from './roots.js';

let built: string | undefined;

/** Build the attacker (cc -static), once. */
export function attackerBinary(): string {
  if (built) return built;
  const out = join(scratchDir('mountat-attacker-'), 'attacker');
  execFileSync('cc', ['-static', '-O2', '-Wall', '-Werror', '-o', out, join(repo, 'test', 'fixtures', 'attacker.c')]);
  built = out;
  return out;
}

/** Put the attacker at /bin/attacker in an input root. */
export function installAttacker(root: string, name = 'attacker', mode = 0o755): string {
  const target = join(root, 'bin', name);
  copyFileSync(attackerBinary(), target);
  chmodSync(target, mode);
  return target;
}

/** "major:minor" of the device the host's / is on, from this namespace's mountinfo. */
export function rootDevice(): [number, number] {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((entry) => entry.split(' ')[4] === '/');
  const [major, minor] = (line?.split(' ')[2] ?? '0:0').split(':').map(Number);
  return [major!, minor!];
}
