// Test fixtures: scratch roots under the temp directory, and views of the mount table.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as C, openat2, type Fd } from '../../src/linux/index.js';
import { COVERS, type CoveredKind } from '../../src/mounts/index.js';

export const repo = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

export function scratchDir(prefix = 'mountat-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A root with a static busybox in /bin and nothing else: no proc, sys or tmp. */
export function busyboxRoot(): string {
  const dir = scratchDir('mountat-root-');
  execFileSync(join(repo, 'scripts', 'make-busybox-root.sh'), [dir]);
  return dir;
}

export function openDir(dir: string): Fd {
  return openat2(C.AT_FDCWD, dir, { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: 0 });
}

/** The whole mount table of this namespace, as the kernel writes it. */
export function mountTable(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Mount points at or below `dir` in this namespace. */
export function mountsUnder(dir: string): string[] {
  return mountTable()
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)));
}

/**
 * Mount points at or below /proc, /sys and /tmp in the mount namespace of `pid`: a runner's
 * action's own mounts, which the runner makes on a detached copy of its root and never in its
 * own namespace.
 */
export function actionPlanMounts(pid: number): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && ['/proc', '/sys', '/tmp'].some((dir) => point === dir || point.startsWith(`${dir}/`)));
}

let sleeps = 0;
/** A `sleep` duration of a little over a second that no other process of this run has: `sleep MARK` finds it. */
export function sleepMark(): string {
  return `1.${process.pid}${++sleeps}`;
}

/** The pid of the process whose command line has `pattern` (pgrep -f), waited for up to 5 s. */
export async function processWith(pattern: string): Promise<number> {
  for (let i = 0; i < 250; i++) {
    const found = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
    const pids = found.stdout.trim().split('\n').filter(Boolean).map(Number);
    if (pids.length === 1 && pids[0] !== undefined) return pids[0];
    if (pids.length > 1) throw new Error(`more than one process has "${pattern}": ${pids.join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no process has "${pattern}" after 5 s`);
}

/** Run a command chrooted into `dir` (util-linux unshare --root), from the test's namespace. */
export function runInRoot(dir: string, command: string[]): SpawnSyncReturns<string> {
  return spawnSync('unshare', [`--root=${dir}`, '--wd=/', '--', ...command], { encoding: 'utf8' });
}

export function removeTree(dir: string): void {
  if (mountsUnder(dir).length > 0) throw new Error(`refusing to remove ${dir}: still has mounts ${mountsUnder(dir).join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The names a hardened proc or sysfs covers on this kernel: those of its list it has (this
 * test's /proc and /sys are a proc and a sysfs of the same kernel). Kernels differ: this one has
 * no sysrq-trigger, no powercap.
 */
export function coversHere(kind: CoveredKind): string[] {
  return COVERS[kind].filter((spec) => existsSync(`/${kind === 'proc' ? 'proc' : 'sys'}/${spec.name}`)).map((spec) => spec.name);
}

/**
 * A firmware table this machine's sysfs shows, beneath /sys/firmware: what a hardened sysfs hides
 * (ACPI's DSDT where the firmware is ACPI's, as a root action read it through a bare sysfs).
 */
export function firmwareTableHere(): string | undefined {
  return ['acpi/tables/DSDT', 'dmi/tables/DMI', 'memmap/0/type'].find((path) => existsSync(`/sys/firmware/${path}`));
}

/** The names a hardened proc covers on this kernel. */
export function procCoversHere(): string[] {
  return coversHere('proc');
}

/**
 * How many mounts the default plan (and the runner's default: proc, sysfs, the tmp bind) holds
 * while attached: its three, and the covers of its hardened proc and sysfs.
 */
export function defaultPlanMountCount(): number {
  return 3 + coversHere('proc').length + coversHere('sysfs').length;
}

/** Mount points a hardened proc or sysfs at `path` adds besides itself, in the order they are made. */
export function coverPoints(kind: CoveredKind, path: string): string[] {
  return coversHere(kind).map((name) => `${path}/${name}`);
}

/** Mount points a hardened proc at `procPath` adds besides itself, in the order they are made. */
export function procCoverPoints(procPath: string): string[] {
  return coverPoints('proc', procPath);
}
