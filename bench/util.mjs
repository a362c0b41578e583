// Small helpers shared by the benchmark's files: running commands, timing them interleaved,
// and the statistics the report prints.
import { execFileSync, spawnSync } from 'node:child_process';
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

/**
 * Time whole-process actions interleaved: each repetition runs every action once per round,
 * `runs` rounds, so slow drift of the machine (a VM's neighbours, page cache, thermal) falls on
 * all of them alike. Each action is timed on its own; its figure for a repetition is the mean
 * over the rounds, in ms. `actions` maps a name to a function that runs it once.
 */
export function interleaved(actions, { runs, reps, warmup }) {
  const names = Object.keys(actions);
  for (let i = 0; i < warmup; i++) for (const name of names) actions[name]();
  const perRep = Object.fromEntries(names.map((name) => [name, []]));
  for (let r = 0; r < reps; r++) {
    const total = Object.fromEntries(names.map((name) => [name, 0]));
    for (let i = 0; i < runs; i++) {
      for (const name of names) {
        const start = process.hrtime.bigint();
        actions[name]();
        total[name] += Number(process.hrtime.bigint() - start) / 1e6;
      }
    }
    for (const name of names) perRep[name].push(total[name] / runs);
  }
  return Object.fromEntries(names.map((name) => [name, summary('ms/run', perRep[name], runs)]));
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
export function enterPrivateNamespace() {
  if (!process.env.MOUNTAT_BENCH_OUTER_NS) {
    const outer = readlinkSync('/proc/self/ns/mnt');
    const result = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, MOUNTAT_BENCH_OUTER_NS: outer },
    });
    process.exit(result.status ?? 1);
  }
  if (readlinkSync('/proc/self/ns/mnt') === process.env.MOUNTAT_BENCH_OUTER_NS) throw new Error('not in a private mount namespace');
  if (!existsSync(join(REPO, 'dist', 'mountat-action'))) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
}

let sequence = 0;

/** One Run of argv (default /bin/true) in `action`'s input root through a runner client (grpc-js stub); rejects unless exit 0. */
export function runAction(stub, action, argv = ['/bin/true']) {
  const n = ++sequence;
  const request = {
    arguments: argv,
    environmentVariables: { PATH: '/bin' },
    inputRootDirectory: `${action}/root`,
    temporaryDirectory: `${action}/tmp`,
    stdoutPath: `${action}/out-${n}`,
    stderrPath: `${action}/err-${n}`,
  };
  return new Promise((resolve, reject) => stub.Run(request, (error, response) => (error ? reject(error) : response.exitCode === '0' ? resolve() : reject(new Error(`exit ${response.exitCode}`)))));
}
