// The npm package: what `npm pack` puts in it, and that it works installed into an empty
// directory (its dependencies from the registry): `mountat doctor` and the hook run from there.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from './helpers/checked.js';
import { removeTree, repo, scratchDir } from './helpers/roots.js';

let dir: string;
let files: string[];
beforeAll(() => {
  dir = scratchDir('mountat-package-');
  // --ignore-scripts: dist/ is built already by the test command; prepack would build it again.
  const output = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: repo, encoding: 'utf8' });
  files = parseJson<Array<{ files: Array<{ path: string }> }>>(output)[0]!.files.map((file) => file.path);
}, 120_000);
afterAll(() => removeTree(dir));

describe('npm package', () => {
  it('holds the bin, hooks, schemas and dist, and no tests, sources, maps or build stamps', () => {
    for (const needed of ['bin/mountat.js', 'hooks/mountat-hook', 'hooks/hooks.d/mountat.json', 'dist/hook.cjs', 'dist/mountat-action', 'dist/cli/main.js', 'schemas/mount-plan.schema.json', 'schemas/buildbarn/runner/runner.proto', 'README.md', 'LICENSE']) {
      expect(files, needed).toContain(needed);
    }
    expect(files.filter((path) => /^(src|test|bench|scripts|native)\/|\.map$|\.stamp$|\.test\.js$/.test(path))).toEqual([]);
  });

  it('installs into an empty directory and runs doctor and the hook from there', { timeout: 300_000 }, () => {
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))!;
    const app = join(dir, 'app');
    execFileSync('mkdir', [app]);
    execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', join(dir, tarball)], { cwd: app, stdio: 'pipe' });
    const doctor = spawnSync(join(app, 'node_modules', '.bin', 'mountat'), ['doctor'], { encoding: 'utf8' });
    expect(doctor.stdout).toMatch(/this host can run mountat\n$/);
    expect(doctor.status).toBe(0);
    const state = JSON.stringify({ ociVersion: '1.0.2', id: 'from-package', status: 'stopped', bundle: app });
    const hook = spawnSync(join(app, 'node_modules', 'mountat', 'hooks', 'mountat-hook'), ['poststop', '--state-dir', join(dir, 'records')], { input: state, encoding: 'utf8' });
    expect(hook.stderr).toBe('');
    expect(hook.stdout).toBe('nothing recorded for container from-package\n');
    expect(hook.status).toBe(0);
  });
});
