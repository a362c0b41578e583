// The library a user installs: `import … from 'mountat'` resolves to typed declarations, the
// example in examples/ type-checks against them as installed, and run as root (in this test's
// private mount namespace) it mounts, lists and tears down, leaving nothing mounted.
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installInto, packPackage } from './helpers/package.js';
import { coversHere, mountsUnder, mountTable, procCoversHere, removeTree, repo, scratchDir } from './helpers/roots.js';

let dir: string;
let app: string;
beforeAll(() => {
  dir = scratchDir('mountat-library-');
  app = join(dir, 'app');
  installInto(app, packPackage(dir).tarball);
  copyFileSync(join(repo, 'examples', 'library.ts'), join(app, 'library.ts'));
  // As strict as this repository, and the installed declarations checked too (skipLibCheck off).
  const compilerOptions = {
    target: 'ES2022',
    lib: ['ES2022', 'ESNext.Disposable'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [join(repo, 'node_modules', '@types')],
    outDir: 'out',
  };
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['library.ts'] }));
  writeFileSync(join(app, 'tsconfig.misuse.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, noEmit: true }, files: ['misuse.ts'] }));
}, 300_000);
afterAll(() => removeTree(dir));

const tsc = (project: string) => spawnSync(join(repo, 'node_modules', '.bin', 'tsc'), ['-p', project], { cwd: app, encoding: 'utf8' });

describe('the library, installed from the package', () => {
  it('type-checks examples/library.ts against the installed declarations', () => {
    const result = tsc('tsconfig.json');
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('has real types: a root given as a path, or a plan entry of an unknown kind, does not compile', () => {
    writeFileSync(
      join(app, 'misuse.ts'),
      [
        "import { attach, defaultPlan, parsePlan, type MountEntry } from 'mountat';",
        "attach('/some/root', defaultPlan());",
        "const entry: MountEntry = { target: 'proc', kind: 'overlay' };",
        'parsePlan({ mounts: [entry] });',
        '',
      ].join('\n'),
    );
    const result = tsc('tsconfig.misuse.json');
    expect(result.status).not.toBe(0);
    expect(result.stdout).toMatch(/misuse\.ts\(2,8\): error TS2345: Argument of type 'string' is not assignable to parameter of type 'FdRef'/);
    expect(result.stdout).toMatch(/misuse\.ts\(3,45\): error TS2322: Type '"overlay"' is not assignable/);
  });

  it('exports only the API: a module of dist/ is not importable by its path', () => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('mountat/dist/mounts/index.js')"], { cwd: app, encoding: 'utf8' });
    expect(result.stderr).toMatch(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
    expect(result.status).not.toBe(0);
  });

  it('runs the example as root: mounts the default plan by fd, lists it, tears down, leaves nothing', () => {
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const before = mountTable();
    // The compiled example, run from the project where `mountat` is installed.
    const result = spawnSync(process.execPath, [join(app, 'out', 'library.js')], { cwd: app, encoding: 'utf8', env: { PATH: process.env.PATH, TMPDIR: tmp } });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        `mounted proc on /proc (${procCoversHere().length} covered)`,
        `mounted sysfs on /sys (${coversHere('sysfs').length} covered)`,
        'mounted tmpfs on /tmp',
        'unmounted /tmp, /sys, /proc',
        'removed /tmp, /sys, /proc',
        '',
      ].join('\n'),
    );
    expect(result.status).toBe(0);
    expect(mountsUnder(tmp)).toEqual([]);
    expect(mountTable()).toBe(before);
    // It removed its temporary root and state directory once nothing was mounted there.
    expect(readdirSync(tmp)).toEqual([]);
  });
});
