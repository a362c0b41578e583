import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { repo } from './roots.js';

/** Run the built `mountat` command (dist/ is built by `npm test` before vitest starts). */
export function mountat(args: string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(repo, 'bin', 'mountat.js'), ...args], {
    encoding: 'utf8',
    env: options.env ?? process.env,
    timeout: options.timeout ?? 20_000,
  });
}

/** The built `mountat` command's argv, for running it under a wrapper (setpriv, a seccomp filter, a session keyring). */
export function mountatArgv(...args: string[]): string[] {
  return [process.execPath, join(repo, 'bin', 'mountat.js'), ...args];
}
