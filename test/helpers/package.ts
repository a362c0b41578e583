// The npm package as a user gets it: `npm pack` of this checkout, installed into an empty project
// (its dependencies from the registry). Shared by the package and library tests.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseJson } from './checked.js';
import { repo } from './roots.js';

export interface Packed {
  tarball: string;
  /** The paths the tarball holds, relative to the package. */
  files: string[];
}

/** Pack this checkout into `dir`. */
export function packPackage(dir: string): Packed {
  // --ignore-scripts: dist/ is built already by the test command; prepack would build it again.
  const output = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: repo, encoding: 'utf8' });
  const [packed] = parseJson<Array<{ filename: string; files: Array<{ path: string }> }>>(output);
  return { tarball: join(dir, packed!.filename), files: packed!.files.map((file) => file.path) };
}

/** A new project at `app` (an ES module package) with the tarball installed. */
export function installInto(app: string, tarball: string): void {
  execFileSync('mkdir', [app]);
  execFileSync('npm', ['init', '-y'], { cwd: app, stdio: 'ignore' });
  execFileSync('npm', ['pkg', 'set', 'type=module'], { cwd: app, stdio: 'ignore' });
  execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, stdio: 'pipe' });
}
