// Small helpers shared by the benchmark's files: running commands, timing them interleaved,
// and the statistics the report prints.
// Setup and orchestration only (builds, installs, the re-execution, starting bench/outside.py): no
// figure comes from a process started here; outside.py starts what it times.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Run a command to completion; throw with its stderr unless it exited 0. `input` goes to stdin. */
export function run(command, args, options = {}) {
  const stdin = options.input === undefined ? 'ignore' : 'pipe';
  const result = spawnSync(command, args, { stdio: [stdin, 'pipe', 'pipe'], encoding: 'utf8', ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const why = result.signal ? `killed by ${result.signal}` : `exit ${result.status}`;
    throw new Error(`${command} ${args.join(' ')}: ${why}\n${(result.stderr ?? '').trim()}`);
  }
  return result.stdout ?? '';
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** One measured quantity: its value per repetition and their median, min and max. */
export function summary(unit, values, perRep) {
  return { unit, median: median(values), min: Math.min(...values), max: Math.max(...values), reps: values, perRep };
}

/** Per-repetition ratios a[r]/b[r] of two summaries taken in the same repetitions. */
export function repRatios(a, b) {
  const values = a.reps.map((v, r) => v / b.reps[r]);
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), reps: values };
}

/** Debian's python, which runs bench/outside.py (the timer outside Node) with Debian's python3-grpcio. */
export const PYTHON = '/usr/bin/python3';
export const OUTSIDE = join(REPO, 'bench', 'outside.py');

/** Whether bench/outside.py can run: Debian's python3, and with `grpc` its python3-grpcio. */
export function pythonWorks({ grpc = false } = {}) {
  return spawnSync(PYTHON, ['-c', grpc ? 'import grpc' : 'import json, os'], { stdio: 'ignore' }).status === 0;
}

/**
 * `needs` maps Debian packages to a check of whether what the bench wants from each is there. The
 * missing ones are installed by `scripts/setup.sh PACKAGE...` (apt, then the build, as setup.sh
 * always does), and checked again. Call outside the private namespace, before re-executing.
 */
export function ensureDebianPackages(needs) {
  const missing = Object.keys(needs).filter((pkg) => !needs[pkg]());
  if (missing.length === 0) return;
  console.error(`bench: missing, installing with scripts/setup.sh: ${missing.join(' ')}`);
  execFileSync('bash', [join(REPO, 'scripts', 'setup.sh'), ...missing], { cwd: REPO, stdio: 'inherit' });
  const still = missing.filter((pkg) => !needs[pkg]());
  if (still.length > 0) throw new Error(`bench: still missing after scripts/setup.sh: ${still.join(' ')}`);
}

/**
 * Run bench/outside.py on `spec` (JSON on its stdin) and resolve to its JSON result. All the timing
 * happens in that Python process, which also starts whatever it times (posix_spawn); this Node
 * process only waits (no figure includes a fork of it). Rejects, with outside.py's reason on
 * stderr, if it exits non-zero: a failed action fails the bench.
 */
export function outside(spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [OUTSIDE], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks = [];
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`bench/outside.py failed (${signal ?? `exit ${code}`}): see its message above`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(new Error(`bench/outside.py wrote no JSON result: ${error.message}`));
      }
    });
    child.stdin.end(JSON.stringify(spec));
  });
}

/**
 * Whole-process commands timed interleaved from outside Node: bench/outside.py starts each with
 * posix_spawn and reaps it with waitpid (Node's spawnSync would fork this whole process, about 9 ms
 * a start here). `commands` maps a name to {argv (argv[0] absolute), env, stdin?: a file}. Each
 * repetition runs every command once per round, `runs` rounds; with `rotate` the round's first
 * command rotates (only for commands that do not depend on the one before). A summary per name,
 * in ms/run (each repetition's figure is the mean over its rounds).
 */
export async function timeSpawns(commands, { runs, reps, warmup }, { rotate = false } = {}) {
  const result = await outside({ mode: 'spawn', commands, runs, reps, warmup, rotate });
  return Object.fromEntries(Object.entries(result.perRep).map(([name, values]) => [name, summary('ms/run', values, runs)]));
}

/** Mount points (unescaped) of this namespace's /proc/self/mountinfo. */
export function mountPoints() {
  const unescape = (field) => field.replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => unescape(line.split(' ')[4]));
}

/** Mount points at or beneath `dir`, deepest first. */
export function mountsUnder(dir) {
  return mountPoints()
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** `--quick` picks the small sizes; `--json FILE` names where to write the results (or undefined). */
export function benchOptions(sizes) {
  const jsonAt = process.argv.indexOf('--json');
  return { sizes: process.argv.includes('--quick') ? sizes.quick : sizes.full, jsonFile: jsonAt > 0 ? process.argv[jsonAt + 1] : undefined };
}

/**
 * The runner benchmarks mount: they run in a private mount namespace. Outside one, re-execute this
 * script under `unshare --mount --propagation private` and exit with its status (never returns);
 * inside, make sure the build exists and return.
 */
export function enterPrivateNamespace({ hostCheck } = {}) {
  if (!process.env.MOUNTAT_BENCH_OUTER_NS) {
    const outer = readlinkSync('/proc/self/ns/mnt');
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, MOUNTAT_BENCH_OUTER_NS: outer },
    });
    // `hostCheck`: a string no mount point of the host may contain afterwards (the scratch's prefix).
    const leaked = hostCheck ? mountPoints().filter((point) => point.includes(hostCheck)) : [];
    if (leaked.length > 0) {
      console.error(`bench: FAILURE: mounts of the benchmark are visible on the host:\n  ${leaked.join('\n  ')}`);
      process.exit(1);
    }
    process.exit(result.status ?? 1);
  }
  if (readlinkSync('/proc/self/ns/mnt') === process.env.MOUNTAT_BENCH_OUTER_NS) throw new Error('not in a private mount namespace');
  if (!existsSync(join(REPO, 'dist', 'mountat-action'))) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
}
