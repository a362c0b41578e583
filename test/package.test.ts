// The npm package: what `npm pack` puts in it, and that it works installed into an empty
// directory (its dependencies from the registry): `mountat doctor` and the hook run from there.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto, packPackage, type Packed } from './helpers/package.js';
import { removeTree, scratchDir } from './helpers/roots.js';

let dir: string;
let packed: Packed;
beforeAll(() => {
  dir = scratchDir('mountat-package-');
  packed = packPackage(dir);
}, 120_000);
afterAll(() => removeTree(dir));

describe('npm package', () => {
  it('holds the bin, hooks, schemas, dist with its declarations, man pages, and no tests, sources, maps or build stamps', () => {
    const { files } = packed;
    for (const needed of [
      'bin/mountat.js',
      'hooks/mountat-hook',
      'hooks/hooks.d/mountat.json',
      'dist/hook.cjs',
      'dist/mountat-action',
      'dist/cli/main.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/mounts/attach.d.ts',
      'man/mountat.1',
      'man/mountat-hook.1',
      'schemas/mount-plan.schema.json',
      'schemas/mount-record.schema.json',
      'schemas/buildbarn/runner/runner.proto',
      'schemas/mountat/resourceusage/cgroup_resource_usage.proto',
      'README.md',
      'LICENSE',
    ]) {
      expect(files, needed).toContain(needed);
    }
    expect(files.filter((path) => /^(src|test|bench|scripts|native)\/|\.map$|\.stamp$|\.test\.js$/.test(path))).toEqual([]);
  });

  it('installs into an empty directory and runs doctor and the hook from there', { timeout: 300_000 }, () => {
    const app = join(dir, 'app');
    installInto(app, packed.tarball);
    const doctor = spawnSync(join(app, 'node_modules', '.bin', 'mountat'), ['doctor'], { encoding: 'utf8' });
    expect(doctor.stdout).toMatch(/this host can run mountat\n$/);
    expect(doctor.status).toBe(0);
    const state = JSON.stringify({ ociVersion: '1.0.2', id: 'from-package', status: 'stopped', bundle: app });
    const hook = spawnSync(join(app, 'node_modules', 'mountat', 'hooks', 'mountat-hook'), ['poststop', '--state-dir', join(dir, 'records')], {
      input: state,
      encoding: 'utf8',
    });
    expect(hook.stderr).toBe('');
    expect(hook.stdout).toBe('nothing recorded for container from-package\n');
    expect(hook.status).toBe(0);
  });
});
