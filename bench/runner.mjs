#!/usr/bin/env node
// The runner's benchmark, measured from outside: what one action costs through `mountat runner`
// (a Run of /bin/true over its UNIX socket, default config: proc for the action's own PID
// namespace, read-only sysfs, the temporary directory on /tmp) against bubblewrap doing the same
// mounts and isolation, against a bare `chroot ROOT /bin/true` (what bb_runner does) and against
// the limit (bench/limit.c: the kernel work of the same contained action and nothing else, as a
// server over a pipe, spawned per action, and with its init forked as the starter forks its own;
// "÷ limit"), against gRPC alone (bench/grpc-echo.mjs: grpc-js answering every Run at once),
// against gRPC + the limit (bench/grpc-limit.mjs: grpc-js handing every Run to the limit: the floor
// of any runner on grpc-js and Node, whose work per action is the limit's alone), and the first
// runner again with its build and state directories on the disk (NAME-ext4); then throughput with
// 16 in flight, the same with the whole runner and the limit pinned to 1, 2, 4, 8 CPUs (as many as
// the machine has), the runners' CPU per action (the Node main thread's and the whole process's),
// their memory, where their time goes (their own log lines), and the OCI hook's start against
// `node -e 0`.
//
// Every figure is taken by bench/outside.py: one small Python process that starts the runners and
// every other process with posix_spawn and calls the runners through Debian's python3-grpcio, with
// one clock, interleaved; it stops the runners at the end. This Node process only orchestrates: it
// builds the roots and the runners' configs, checks what they left and prints the report. (It used to time everything itself, and its spawnSync forked
// the whole Node process for each baseline: about 9 ms on every baseline figure.)
//
// usage: node bench/runner.mjs [--quick] [--json FILE] [--runner NAME=CHECKOUT ...]
//   (as root; `npm run bench -- runner ...`). Without --runner, the runner of this checkout, named
//   "current". Each --runner is started from CHECKOUT/bin/mountat.js (CHECKOUT must be built), with
//   its own build directory, socket and state directory, and interleaved with all the others, e.g.
//   --runner before=/path/to/old/checkout --runner after=/work/main. Ratios between runners are
//   taken against the first one named. --runner-config NAME='{"network":"none"}' adds config keys
//   to the runner NAME (named before it), e.g. to measure an option's cost against the default.
//   --ab: what one change is worth, and nothing else: exactly two --runner (A, then B), each
//   phase in rounds whose order alternates, B's figure over A's per round: one Run at a time with
//   an action of the limit's after each, back to back, and 16 in flight (outside.py ab_phases); a
//   few minutes where the whole run takes ten.
// Re-executes itself in a private mount namespace (unshare --mount --propagation private).
// Setup only (roots, mounts, the build, git): no figure comes from a process Node starts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join, resolve } from 'node:path';
import { ensureDebianPackages, enterPrivateNamespace, median, mountsUnder, outside, pythonWorks, REPO, run, summary } from './util.mjs';

const SCRATCH_PREFIX = 'mountat-bench-outside-';
/** The environment of `node -e 0` and the hook: the one hooks/mountat-hook's launcher gives node. */
const NODE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
/** The baselines' environment (they are started by absolute path; the action's PATH is /bin). */
const BASELINE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
const BWRAP = '/usr/bin/bwrap';
const CHROOT = '/usr/sbin/chroot';

// Throughput is of a sustained load: each round starts with a burst of inFlight requests at once
// and ends with inFlight in flight draining to none, and in rounds of 100 that was a sixth of every
// round, enough to move the figures (gRPC alone 2,047 against 3,047 /s in rounds of 1,000, the
// limit 386 against 451, the runner's share of the limit's 0.47 against 0.53×: bench/RESULTS.md).
// Rounds of 1,000 keep both ends under 2% of a round.
const SIZES = {
  full: {
    latency: { runs: 100, reps: 5, warmup: 10 },
    backToBack: { runs: 200, reps: 3, warmup: 20 },
    throughput: { actions: 2000, rounds: 2, reps: 5, inFlight: 16 },
    memory: { inFlight: 32, soak: 2000, soakInFlight: 16 },
    hook: { runs: 20, reps: 5, warmup: 2 },
    cores: { cpus: [1, 2, 4, 8], actions: 1000, reps: 3 },
    ab: { rounds: 6, runs: 200, warmup: 20, throughput: { actions: 1000, inFlight: 16 } },
  },
  quick: {
    latency: { runs: 5, reps: 2, warmup: 2 },
    backToBack: { runs: 5, reps: 1, warmup: 1 },
    throughput: { actions: 32, rounds: 2, reps: 2, inFlight: 16 },
    memory: { inFlight: 32, soak: 48, soakInFlight: 16 },
    hook: { runs: 2, reps: 2, warmup: 1 },
    cores: { cpus: [1, 2], actions: 32, reps: 1 },
    ab: { rounds: 2, runs: 5, warmup: 2, throughput: { actions: 32, inFlight: 16 } },
  },
};
/** Action directories per runner: one per Run in flight at the most (the memory phase's 32). */
const ACTIONS = Math.max(SIZES.full.memory.inFlight, SIZES.full.throughput.inFlight);

const USAGE = 'usage: node bench/runner.mjs [--quick] [--json FILE] [--ab] [--runner NAME=CHECKOUT ...] [--runner-config NAME=JSON ...]';

function parseArgs(argv) {
  const options = { quick: false, json: undefined, ab: false, runners: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--ab') options.ab = true;
    else if (arg === '--json' && argv[i + 1]) options.json = resolve(argv[++i]);
    else if (arg === '--runner' && argv[i + 1]) {
      const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(argv[++i]);
      if (!m) throw new Error(`${USAGE}\n--runner wants NAME=CHECKOUT (NAME of letters, digits, _ . -), got ${JSON.stringify(argv[i])}`);
      if (options.runners.some((r) => r.name === m[1])) throw new Error(`--runner ${m[1]} named twice`);
      options.runners.push({ name: m[1], checkout: resolve(m[2]), config: {} });
    } else if (arg === '--runner-config' && argv[i + 1]) {
      // Extra config keys for one runner (e.g. '{"network":"none"}'), over the default config.
      const m = /^([A-Za-z0-9_.-]+)=(\{.*\})$/s.exec(argv[++i]);
      if (!m) throw new Error(`${USAGE}\n--runner-config wants NAME={...JSON...}, got ${JSON.stringify(argv[i])}`);
      const runner = options.runners.find((r) => r.name === m[1]);
      if (!runner) throw new Error(`--runner-config ${m[1]}: no --runner of that name before it`);
      runner.config = JSON.parse(m[2]);
    } else throw new Error(`${USAGE}\n(unknown argument ${JSON.stringify(arg)})`);
  }
  if (options.runners.length === 0) options.runners.push({ name: 'current', checkout: REPO, config: {} });
  if (options.ab && options.runners.length !== 2)
    throw new Error(`${USAGE}\n--ab compares two runners: name exactly two --runner NAME=CHECKOUT (A first), got ${options.runners.length}`);
  return options;
}

/** A checkout must be built: this bench builds only its own (never touches another checkout). */
function checkCheckout({ name, checkout }) {
  for (const path of ['bin/mountat.js', 'dist/cli/main.js', 'dist/mountat-action']) {
    if (!existsSync(join(checkout, path))) throw new Error(`--runner ${name}=${checkout}: no ${path}: build it first (cd ${checkout} && npm run build)`);
  }
}

function firstLine(command, args, options) {
  try {
    return run(command, args, options).split('\n')[0].trim();
  } catch {
    return 'unavailable';
  }
}

function codeVersion(checkout) {
  const head = firstLine('git', ['-C', checkout, 'rev-parse', '--short', 'HEAD']);
  const dirty = firstLine('git', ['-C', checkout, 'status', '--porcelain', '--untracked-files=no']) !== '';
  const built = statSync(join(checkout, 'dist/mountat-action')).mtime.toISOString();
  return `${head}${dirty ? ' with uncommitted changes' : ''}, dist/ built ${built}`;
}

function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const field = (name) => cpuinfo.match(new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm'))?.[1]?.trim();
  return {
    kernel: firstLine('uname', ['-srvm']),
    cpu: field('model name') ?? field('Hardware') ?? 'unknown',
    nproc: Number(run('nproc', []).trim()),
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    bwrap: firstLine(BWRAP, ['--version']),
    chroot: firstLine(CHROOT, ['--version']),
    loadStart: os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' '),
  };
}

function busyboxRoot(dir) {
  execFileSync(join(REPO, 'scripts', 'make-busybox-root.sh'), [dir]);
}

/** An action directory as bb_worker makes one: a busybox input root and a temporary directory. */
function actionDirectory(dir) {
  busyboxRoot(join(dir, 'root'));
  mkdirSync(join(dir, 'tmp'));
}

/**
 * The limit's contenders, by the names the report gives them. "limit" is the yardstick: the kernel
 * work of the runner's default action, with what issues 19 and 20 added to every action (a keyring,
 * the per-user limit, a seccomp filter, a cgroup per action in the runner's trees); "limit, no
 * 19/20" the same without them, as the limit was first measured.
 */
const LIMIT = 'limit';
const LIMIT_BARE = 'limit, no 19/20';
const LIMIT_SPAWNED = 'limit spawned';
/** The limit with its init forked (no CLONE_VM), as mountat's starter server forks its init without CAP_SYS_PTRACE. */
const LIMIT_FORKED = 'limit, init forked';
/** A grpc-js server answering every Run at once (bench/grpc-echo.mjs): gRPC alone. */
const ECHO = 'gRPC alone';
/** A grpc-js server handing every Run to the limit (bench/grpc-limit.mjs): a runner's floor on grpc-js and Node. */
const FLOOR = 'gRPC + the limit';
/** The gRPC servers timed like a runner that are not runners. */
const GRPC_BASELINES = [ECHO, FLOOR];

/** bench/limit.c, built static into the scratch directory. */
function buildLimit(scratch) {
  const binary = join(scratch, 'limit');
  run('cc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', binary, join(REPO, 'bench', 'limit.c')]);
  return binary;
}

/**
 * A directory of this process's own in each cgroup tree a runner's actions get a cgroup in (the
 * v2 tree, and the trees of pids, memory and io: src/sandbox/cgroups/action-cgroups.ts), for the
 * limit's cgroup per action; removed by removeLimitCgroups. Empty, with the reason, where none
 * can be made.
 */
async function limitCgroups() {
  const { readLayout, placeController, directoryOf } = await import('../dist/sandbox/cgroups/hierarchies.js');
  const layout = readLayout();
  const trees = new Set([layout.v2, ...['pids', 'memory', 'io'].map((c) => placeController(layout, c))].filter(Boolean));
  const made = [];
  try {
    for (const tree of trees) {
      const own = directoryOf(tree, tree.ownPath);
      if (own === undefined) continue;
      const dir = join(own, `mountat-bench-limit-${process.pid}`);
      mkdirSync(dir);
      made.push(dir);
    }
  } catch (error) {
    removeLimitCgroups(made);
    return { dirs: [], why: error.message };
  }
  return { dirs: made, why: made.length === 0 ? 'no cgroup tree found' : undefined };
}

/** The limit's cgroup directories, and any action's it left (it removes each after its action). */
function removeLimitCgroups(dirs) {
  const left = [];
  for (const dir of dirs) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      left.push(join(dir, entry.name));
      rmdirSync(join(dir, entry.name));
    }
    rmdirSync(dir);
  }
  return left;
}

/**
 * One runner: its own build directory (ACTIONS action directories), socket, state directory and log
 * (pino JSON on stdout, into a file: its per-action lines are where the time goes). Default config
 * but for those paths and logLevel info. bench/outside.py starts it (posix_spawn), so that it is
 * no child of this Node process, and stops it with SIGTERM.
 */
function prepareRunner(scratch, { name, checkout, config: extra = {}, memory = true }) {
  const dir = join(scratch, 'runners', name);
  const build = join(dir, 'build');
  const actions = Array.from({ length: ACTIONS }, (_, i) => `a${i}`);
  for (const action of actions) actionDirectory(join(build, action));
  const socket = join(dir, 'runner.sock');
  const stateDirectory = join(dir, 'state');
  const config = join(dir, 'config.json');
  const log = join(dir, 'runner.log');
  writeFileSync(config, JSON.stringify({ buildDirectoryPath: build, grpcServers: [{ listenPaths: [socket] }], stateDirectory, logLevel: 'info', ...extra }));
  const argv = [join(checkout, 'bin', 'mountat.js'), 'runner', '--config', config];
  return { name, checkout, dir, build, actions, socket, stateDirectory, log, argv, memory };
}

/** The suffix of the first runner's twin whose build and state directories are on the disk. */
const EXT4 = '-ext4';

/** The hook of each checkout that has one: `poststop` with an empty state directory. */
function hookCommands(scratch, runners) {
  const stateDir = join(scratch, 'hook-state');
  mkdirSync(stateDir);
  const stdin = join(scratch, 'hook-state.json');
  writeFileSync(stdin, JSON.stringify({ ociVersion: '1.0.2', id: 'x', status: 'stopped', bundle: '/' }));
  // node -e 0 with the node the launcher starts (build-native.sh compiles `command -v node` into it).
  const stamp = join(REPO, 'hooks', 'mountat-hook.stamp');
  const node = (existsSync(stamp) && readFileSync(stamp, 'utf8').split(' ')[1]) || process.execPath;
  const commands = { 'node -e 0': { argv: [node, '-e', '0'], env: NODE_ENV, stdin } };
  const skipped = [];
  const checkouts = [...new Map(runners.map((r) => [r.checkout, r.name])).entries()];
  for (const [checkout, name] of checkouts) {
    const hook = join(checkout, 'hooks', 'mountat-hook');
    if (!existsSync(hook)) {
      skipped.push(`${name}: no ${hook}`);
      continue;
    }
    const argv = [hook, 'poststop', '--state-dir', stateDir];
    // Once, untimed, to see it does what is timed.
    const out = run(hook, argv.slice(1), { input: readFileSync(stdin, 'utf8'), env: NODE_ENV });
    if (!/nothing recorded for container x/.test(out))
      throw new Error(`${hook} poststop printed ${JSON.stringify(out)}, not "nothing recorded for container x"`);
    commands[checkouts.length > 1 ? `hook ${name}` : 'hook'] = { argv, env: NODE_ENV, stdin };
  }
  return { commands, skipped, stateDir, node };
}

// ---------------------------------------------------------------------------------------------
// The report.

const f = (v, d = 2) => (v === null || v === undefined ? '-' : v.toFixed(d));
const ratios = (a, b) => {
  const values = a.map((v, r) => v / b[r]);
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), reps: values };
};

function analyse(result, runners, sizes) {
  const names = runners.map((r) => `runner ${r.name}`);
  const lat = result.latency.perRep;
  const latency = Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, summary('ms/action', v, sizes.latency.runs)]));
  const latencyRatios = {};
  for (const name of names) {
    latencyRatios[`${name} / bwrap`] = ratios(lat[name], lat.bwrap);
    latencyRatios[`${name} / chroot`] = ratios(lat[name], lat.chroot);
    latencyRatios[`${name} - chroot (ms)`] = {
      ...summary(
        'ms',
        lat[name].map((v, r) => v - lat.chroot[r]),
      ),
    };
  }
  // Above the floor (gRPC + the limit): what the runner's own work per action costs.
  if (lat[FLOOR]) {
    for (const name of names) {
      latencyRatios[`${name} / ${FLOOR}`] = ratios(lat[name], lat[FLOOR]);
      latencyRatios[`${name} - ${FLOOR} (ms)`] = summary(
        'ms',
        lat[name].map((v, r) => v - lat[FLOOR][r]),
      );
    }
  }
  latencyRatios['bwrap / chroot'] = ratios(lat.bwrap, lat.chroot);
  for (const name of names.slice(1)) latencyRatios[`${name} / ${names[0]}`] = ratios(lat[name], lat[names[0]]);
  const tp = result.throughput.actionsPerSecond;
  const throughput = Object.fromEntries(Object.entries(tp).map(([k, v]) => [k, summary('actions/s', v, sizes.throughput.actions)]));
  const throughputRatios = {};
  for (const name of names) throughputRatios[`${name} / bwrap`] = ratios(tp[name], tp.bwrap);
  for (const name of names.slice(1)) throughputRatios[`${name} / ${names[0]}`] = ratios(tp[name], tp[names[0]]);
  // Against the limit as a server: every other contender's time per action ÷ the limit's, and its
  // throughput ÷ the limit's, per repetition.
  const limitLatency = {};
  const limitThroughput = {};
  if (lat[LIMIT]) {
    for (const name of Object.keys(lat).filter((k) => k !== LIMIT)) limitLatency[name] = ratios(lat[name], lat[LIMIT]);
    for (const name of Object.keys(tp).filter((k) => k !== LIMIT)) limitThroughput[name] = ratios(tp[name], tp[LIMIT]);
  }
  // Back to back (outside.py 1b): each block's median, and ÷ the limit's per repetition.
  const b2b = result.backToBack?.perRep ?? {};
  const backToBack = Object.fromEntries(Object.entries(b2b).map(([k, v]) => [k, summary('ms/action', v, sizes.backToBack.runs)]));
  const backToBackRatios = {};
  if (b2b[LIMIT]) for (const name of Object.keys(b2b).filter((k) => k !== LIMIT)) backToBackRatios[`${name} / limit`] = ratios(b2b[name], b2b[LIMIT]);
  if (b2b[FLOOR]) for (const name of names.filter((k) => b2b[k])) backToBackRatios[`${name} / ${FLOOR}`] = ratios(b2b[name], b2b[FLOOR]);
  const hk = result.hook.perRep;
  const hook = Object.fromEntries(Object.entries(hk).map(([k, v]) => [k, summary('ms/process', v, sizes.hook.runs)]));
  const hookRatios = {};
  for (const name of Object.keys(hk).filter((k) => k !== 'node -e 0')) hookRatios[`${name} / node -e 0`] = ratios(hk[name], hk['node -e 0']);
  return {
    backToBack,
    backToBackRatios,
    latency,
    latencyRatios,
    throughput,
    throughputRatios,
    limitLatency,
    limitThroughput,
    cpu: result.cpu,
    cores: result.cores
      ? Object.fromEntries(
          Object.entries(result.cores.perCpus).map(([n, figures]) => [
            n,
            Object.fromEntries(
              Object.entries(figures).map(([name, v]) => [
                name,
                { median: median(v.actionsPerSecond), rates: v.actionsPerSecond, mainThreadMsPerAction: v.mainThreadMsPerAction },
              ]),
            ),
          ]),
        )
      : undefined,
    memory: result.memory,
    phases: result.phases,
    hook,
    hookRatios,
  };
}

/** `samples` (optional): each name's single runs per repetition, for the median of all of them. */
function printSummaries(title, summaries, digits = 2, samples) {
  console.log(`\n${title}`);
  const p50 = samples ? ` ${'all p50'.padStart(9)}` : '';
  console.log(`  ${''.padEnd(22)} ${'median'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}${p50}   per repetition`);
  for (const [name, s] of Object.entries(summaries)) {
    const all = samples ? ` ${f(median(samples[name].flat()), digits).padStart(9)}` : '';
    console.log(
      `  ${name.padEnd(22)} ${f(s.median, digits).padStart(9)} ${f(s.min, digits).padStart(9)} ${f(s.max, digits).padStart(9)}${all}   ${s.reps.map((v) => f(v, digits)).join(' ')}`,
    );
  }
}

function printRatios(list, unit = '×') {
  for (const [name, r] of Object.entries(list)) {
    const u = name.endsWith('(ms)') ? '' : unit;
    console.log(`  ${name.padEnd(34)} median ${f(r.median)}${u}  (${f(r.min)}–${f(r.max)})  per rep: ${r.reps.map((v) => f(v)).join(' ')}`);
  }
}

function printReport(doc) {
  const { machine, runners, sizes, analysis: a, quick } = doc;
  console.log('\nmountat runner, measured from outside (bench/outside.py: grpcio and posix_spawn in one Python process)');
  console.log(`  date       ${doc.date}`);
  for (const [key, value] of Object.entries(machine)) console.log(`  ${key.padEnd(10)} ${value}`);
  console.log(
    `  load       1-minute load average as each phase began: ${Object.entries(doc.raw.load)
      .map(([phase, v]) => `${phase} ${v.toFixed(2)}`)
      .join(', ')}`,
  );
  for (const r of runners) console.log(`  runner ${r.name}: ${r.checkout} (${r.code})`);
  const lat = sizes.latency;
  printSummaries(
    `per action, ms (interleaved: ${lat.reps} reps × ${lat.runs} rounds, each contender once a round, rotating; a rep's figure is its mean; "all p50" the median of all ${lat.reps * lat.runs} single runs)`,
    a.latency,
    2,
    doc.raw.latency.samples,
  );
  console.log('  ratios per repetition');
  printRatios(a.latencyRatios);
  const b2b = sizes.backToBack;
  if (Object.keys(a.backToBack).length > 0) {
    printSummaries(
      `per action, ms, back to back (${b2b.reps} reps; in each, every runner and limit server runs ${b2b.warmup} Runs untimed then ${b2b.runs} timed one after another, rotating; a rep's figure is the block's median)`,
      a.backToBack,
      2,
    );
    console.log('  ratios per repetition');
    printRatios(a.backToBackRatios);
  }
  const tp = sizes.throughput;
  printSummaries(
    `throughput, actions/s (${tp.inFlight} in flight; ${tp.reps} reps of ${tp.actions} actions each, in ${tp.rounds} rounds of ${tp.actions / tp.rounds}, interleaved, rotating)`,
    a.throughput,
    1,
  );
  console.log('  ratios per repetition');
  printRatios(a.throughputRatios);
  if (a.latency[LIMIT]) {
    console.log(`\nagainst the limit (bench/limit.c as a server: ${doc.limit.server}; ${doc.limit.extras})`);
    console.log(`  ${''.padEnd(22)} ${'per action'.padStart(10)} ${'÷ limit'.padStart(8)}   ${'16 in flight'.padStart(12)} ${'× limit'.padStart(8)}`);
    const order = [LIMIT, LIMIT_BARE, LIMIT_FORKED, LIMIT_SPAWNED, ECHO, FLOOR, 'bwrap', 'chroot', ...runners.map((r) => `runner ${r.name}`)];
    for (const name of order.filter((n) => a.latency[n])) {
      const ratio = name === LIMIT ? 1 : a.limitLatency[name].median;
      const tp = a.throughput[name];
      const tpRatio = name === LIMIT ? 1 : a.limitThroughput[name]?.median;
      console.log(
        `  ${name.padEnd(22)} ${`${f(a.latency[name].median)} ms`.padStart(10)} ${f(ratio).padStart(8)}   ${(tp ? `${f(tp.median, 1)} /s` : '-').padStart(12)} ${(tpRatio === undefined ? '-' : `${f(tpRatio)}×`).padStart(8)}`,
      );
    }
    console.log('  ÷ limit per repetition');
    printRatios(Object.fromEntries(Object.entries(a.limitLatency).map(([k, v]) => [`${k} ÷ limit`, v])));
    printRatios(Object.fromEntries(Object.entries(a.limitThroughput).map(([k, v]) => [`${k} throughput ÷ limit's`, v])));
  }
  console.log(
    `\nCPU of each runner per action, ms (utime + stime from /proc/PID/task/PID/stat and /proc/PID/stat, in clock ticks of 1/${Object.values(a.cpu)[0]?.clockTicksPerSecond} s)`,
  );
  for (const [name, c] of Object.entries(a.cpu)) {
    console.log(
      `  ${GRPC_BASELINES.includes(name) ? name : `runner ${name}`}: Node main thread ${f(c.latencyThreadMsPerAction)}, whole process ${f(c.latencyProcessMsPerAction)} over the ${c.latencyRuns} measured Runs of the per-action phase (one at a time; ` +
        `the main thread's ceiling ${f(1000 / c.latencyThreadMsPerAction, 0)} actions/s); ${sizes.throughput.inFlight} in flight: main thread ${f(c.throughputThreadMsPerAction)}, whole process ${f(c.throughputProcessMsPerAction)} over ${c.throughputActions} Runs`,
    );
  }
  if (a.cores) {
    const c = sizes.cores;
    console.log(
      `\nthroughput with the whole runner (its threads, its starter servers and so the actions) pinned to the first N CPUs (sched_setaffinity), and the limit pinned the same way; ${sizes.throughput.inFlight} in flight, ${c.reps} reps of ${c.actions} (the client not pinned)`,
    );
    for (const [n, figures] of Object.entries(a.cores)) {
      const parts = Object.entries(figures).map(
        ([name, v]) => `${name} ${f(v.median, 1)} /s (${v.rates.map((r) => f(r, 1)).join(' ')}), main thread ${f(v.mainThreadMsPerAction)} ms/action`,
      );
      const runner = Object.keys(figures).find((k) => k.startsWith('runner '));
      const ratio = runner && figures[LIMIT] ? `; ÷ the limit's ${f(figures[runner].median / figures[LIMIT].median)}×` : '';
      console.log(`  ${n} CPU${n === '1' ? '' : 's'}: ${parts.join('; ')}${ratio}`);
    }
  }
  if (doc.disk?.path)
    console.log(`\nrunner ${doc.disk.runner}: build and state directories in ${doc.disk.path} (${doc.disk.type}); every other runner's on the bench's tmpfs`);
  const mem = sizes.memory;
  console.log(`\nmemory of each runner process, MiB (VmHWM reset through clear_refs before each phase)`);
  for (const [name, m] of Object.entries(a.memory)) {
    const mib = (k) => f(k / 1024, 1);
    console.log(
      `  ${name}: idle RSS ${mib(m.rssIdleKiB)} (peak so far ${mib(m.peakSoFarKiB)}); peak with ${mem.inFlight} × sleep 0.5 in flight ${mib(m.peakAtInFlightKiB)}; ` +
        `soak of ${mem.soak} (${mem.soakInFlight} in flight): peak ${mib(m.peakDuringSoakKiB)}, RSS after ${mib(m.rssAfterSoakKiB)}; peak with ${mem.inFlight} in flight after the soak ${mib(m.peakAtInFlightAfterSoakKiB)}`,
    );
  }
  console.log(`\nwhere each runner's time goes: medians over the ${lat.reps * lat.runs} measured Runs of its own per-action log lines (ms)`);
  for (const [name, fields] of Object.entries(a.phases)) {
    console.log(`  runner ${name}`);
    for (const [key, s] of Object.entries(fields)) {
      const label = key === 'rpcOverheadMs' ? 'RPC overhead (client wall − durationMs)' : key;
      console.log(`    ${label.padEnd(40)} ${f(s.median, 3).padStart(8)}   per rep: ${s.perRep.map((v) => f(v, 3)).join(' ')}`);
    }
  }
  const hk = sizes.hook;
  printSummaries(
    `the hook's start: poststop, nothing recorded, against node -e 0 (ms per process; ${hk.reps} reps × ${hk.runs}, interleaved, rotating)`,
    a.hook,
    1,
    doc.raw.hook.samples,
  );
  printRatios(a.hookRatios);
  for (const note of doc.hookSkipped) console.log(`  (not measured: ${note})`);
  console.log(`\nsizes: ${JSON.stringify(sizes)}`);
  if (quick) console.log('(--quick: counts too small for the figures to mean anything; a smoke run only)');
}

// ---------------------------------------------------------------------------------------------

/** The scratch directory, a tmpfs: mkdir/rmdir of mountpoints on this VM's ext4 journal would dominate and wobble. */
function scratchTmpfs() {
  const scratch = mkdtempSync(join(os.tmpdir(), SCRATCH_PREFIX));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', basename(scratch), scratch]);
  return scratch;
}

/** The limit's action directories, one per action in flight. */
function limitActionDirectories(scratch, count) {
  return Array.from({ length: count }, (_, i) => {
    const dir = join(scratch, 'limit-actions', `l${i}`);
    actionDirectory(dir);
    return { root: join(dir, 'root'), tmp: join(dir, 'tmp') };
  });
}

async function measure(options) {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const machine = machineInfo();
  const scratch = scratchTmpfs();
  const runners = [];
  const problems = [];
  let doc;
  let cgroups = { dirs: [], why: undefined };
  let disk;
  let diskType = 'unknown';
  try {
    console.error(
      `bench: building ${ACTIONS} action directories for each of ${options.runners.length} runner(s), 16 each for bwrap, the limit and the floor, 1 for chroot, in ${scratch}`,
    );
    for (const r of options.runners) runners.push({ ...prepareRunner(scratch, r), code: codeVersion(r.checkout) });
    // The first runner again, its build and state directories on the disk (/var/tmp: this VM's
    // ext4), as a worker's usually are: mkdir/rmdir of mountpoints and the record files hit the
    // journal. Not in the memory phase (the same code as its twin).
    disk = mkdtempSync(join('/var/tmp', SCRATCH_PREFIX));
    const first = options.runners[0];
    runners.push({ ...prepareRunner(disk, { ...first, name: `${first.name}${EXT4}`, memory: false }), code: codeVersion(first.checkout) });
    diskType = firstLine('findmnt', ['-n', '-o', 'FSTYPE', '-T', disk]);
    const echoSocket = join(scratch, 'grpc-echo.sock');
    const echo = {
      name: ECHO,
      argv: [process.execPath, join(REPO, 'bench', 'grpc-echo.mjs'), echoSocket],
      env: process.env,
      output: join(scratch, 'grpc-echo.log'),
      log: join(scratch, 'grpc-echo.log'),
      socket: echoSocket,
      actions: runners[0].actions,
    };
    const bwrap = Array.from({ length: sizes.throughput.inFlight }, (_, i) => {
      const dir = join(scratch, 'bwrap', `b${i}`);
      actionDirectory(dir);
      const argv = [
        BWRAP,
        '--bind',
        join(dir, 'root'),
        '/',
        '--proc',
        '/proc',
        '--ro-bind',
        '/sys',
        '/sys',
        '--bind',
        join(dir, 'tmp'),
        '/tmp',
        '--unshare-pid',
        '--unshare-ipc',
        '--unshare-uts',
        '--cap-drop',
        'ALL',
        '/bin/true',
      ];
      return { argv, env: BASELINE_ENV };
    });
    const chrootDir = join(scratch, 'chroot');
    actionDirectory(chrootDir);
    const chroot = { argv: [CHROOT, join(chrootDir, 'root'), '/bin/true'], env: BASELINE_ENV };
    const hook = hookCommands(scratch, options.runners);
    // The limit: 16 action directories shared by its three contenders (which never run at once).
    const limitBinary = buildLimit(scratch);
    const limitActions = limitActionDirectories(scratch, sizes.throughput.inFlight);
    cgroups = await limitCgroups();
    const extras = ['--seccomp', ...cgroups.dirs.flatMap((dir) => ['--cgroup', dir])];
    const limit = {
      servers: [
        { name: LIMIT, argv: [limitBinary, ...extras, '--serve'], env: BASELINE_ENV, log: join(scratch, 'limit.log') },
        { name: LIMIT_BARE, argv: [limitBinary, '--serve'], env: BASELINE_ENV, log: join(scratch, 'limit-bare.log') },
        { name: LIMIT_FORKED, argv: [limitBinary, ...extras, '--fork-init', '--serve'], env: BASELINE_ENV, log: join(scratch, 'limit-forked.log') },
      ],
      spawned: { name: LIMIT_SPAWNED, argv: [limitBinary, ...extras], env: BASELINE_ENV },
      // Pinned beside the runner in the cores phase.
      yardstick: LIMIT,
      actions: limitActions,
    };

    // The floor: grpc-js in front of a limit server of its own with the yardstick's options, on action
    // directories of its own; outside.py starts that limit (posix_spawn) and hands its pipes to the floor.
    const floorBuild = join(scratch, 'floor');
    const floorActions = Array.from({ length: sizes.throughput.inFlight }, (_, i) => `a${i}`);
    for (const action of floorActions) actionDirectory(join(floorBuild, action));
    const floorSocket = join(scratch, 'grpc-limit.sock');
    const floor = {
      name: FLOOR,
      argv: [process.execPath, join(REPO, 'bench', 'grpc-limit.mjs'), floorSocket, floorBuild],
      limit: { argv: [limitBinary, ...extras, '--serve'], env: BASELINE_ENV, log: join(scratch, 'grpc-limit-limit.log') },
      env: process.env,
      output: join(scratch, 'grpc-limit.log'),
      log: join(scratch, 'grpc-limit.log'),
      socket: floorSocket,
      actions: floorActions,
    };
    const spec = {
      mode: 'runner',
      sizes,
      runners: runners.map(runnerSpec),
      baselines: [echo, floor],
      bwrap,
      chroot,
      hook: hook.commands,
      limit,
    };
    console.error('bench: timing in bench/outside.py');
    const started = Date.now();
    const result = await outside(spec);
    for (const r of runners) if (result.runnerExits[r.name] !== 0) problems.push(`runner ${r.name} exited ${result.runnerExits[r.name]} on SIGTERM`);
    const floorLimit = result.runnerExits[`${FLOOR}: its limit`];
    if (floorLimit !== 0) problems.push(`${FLOOR}: its limit exited ${floorLimit} at the end of its input`);
    machine.loadEnd = os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ');
    machine.python = `${result.python}, grpcio ${result.grpcioVersion}`;
    doc = {
      date: new Date().toISOString(),
      quick: options.quick,
      method:
        'bench/outside.py: one Python process times everything with perf_counter_ns; Runs through grpcio over the UNIX socket, other processes started with os.posix_spawn and reaped with os.waitpid',
      machine,
      runners: runners.map(({ name, checkout, code }) => ({ name, checkout, code })),
      sizes,
      seconds: (Date.now() - started) / 1000,
      hookSkipped: hook.skipped,
      limit: {
        extras: `${LIMIT}, ${LIMIT_FORKED}, ${LIMIT_SPAWNED} and ${FLOOR}'s: --seccomp (a session keyring, RLIMIT_MSGQUEUE, a trivial seccomp filter)${
          cgroups.dirs.length > 0 ? `, a cgroup per action in ${cgroups.dirs.length} trees and oom_score_adj` : ` (no cgroups: ${cgroups.why})`
        }; ${LIMIT_BARE}: without them; ${LIMIT_FORKED}: the init forked, not cloned with CLONE_VM, as mountat's starter server forks its init without CAP_SYS_PTRACE`,
        server: 'one clone of the init per request, from the one server process, answered as each init is reaped',
      },
      runsSent: result.runsSent,
      disk: { path: disk, type: diskType, runner: `${options.runners[0].name}${EXT4}` },
      raw: result,
    };
    doc.analysis = analyse(result, runners, sizes);
  } finally {
    cleanUp(scratch, runners, cgroups, problems);
    if (disk) {
      const leftOnDisk = mountsUnder(disk);
      if (leftOnDisk.length > 0) {
        problems.push(`still mounted under ${disk}:\n  ${leftOnDisk.join('\n  ')}`);
        for (const point of leftOnDisk) execFileSync('umount', ['-l', point]);
      }
      rmSync(disk, { recursive: true, force: true });
    }
  }
  if (problems.length > 0) throw new Error(`FAILURE:\n${problems.join('\n')}`);
  printReport(doc);
  console.log(`checked: every runner exited 0 on SIGTERM with no records left, nothing left mounted under the scratch directory`);
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`wrote ${options.json}`);
  }
}

/**
 * After a run (outside.py has stopped the runners, after a failure of its own too): what the
 * runners and the limit left, each a problem, then the scratch directory unmounted and removed.
 */
function cleanUp(scratch, runners, cgroups, problems) {
  for (const r of runners) {
    // runner.lock stays: it is the runner's lock on its state directory, not a record.
    const records = existsSync(r.stateDirectory) ? readdirSync(r.stateDirectory).filter((name) => name !== 'runner.lock') : [];
    if (records.length > 0) problems.push(`runner ${r.name}: records left in ${r.stateDirectory}: ${records.join(', ')}`);
  }
  try {
    const leftCgroups = removeLimitCgroups(cgroups.dirs);
    if (leftCgroups.length > 0) problems.push(`the limit left cgroups: ${leftCgroups.join(', ')}`);
  } catch (error) {
    problems.push(`removing the limit's cgroups: ${error.message}`);
  }
  const left = mountsUnder(scratch).filter((point) => point !== scratch);
  if (left.length > 0) {
    problems.push(`still mounted under ${scratch}:\n  ${left.join('\n  ')}`);
    for (const point of left) execFileSync('umount', ['-l', point]);
  }
  execFileSync('umount', [scratch]);
  rmSync(scratch, { recursive: true, force: true });
}

/** The runner spec outside.py starts a runner from (its stdout and stderr both into its log: it reads only the JSON lines). */
function runnerSpec(r) {
  return { name: r.name, argv: r.argv, env: process.env, output: r.log, socket: r.socket, log: r.log, actions: r.actions, memory: r.memory };
}

/** --ab: runner B against runner A and the limit, alone (outside.py ab_phases). */
async function measureAb(options) {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const machine = machineInfo();
  const scratch = scratchTmpfs();
  const runners = [];
  const problems = [];
  let cgroups = { dirs: [], why: undefined };
  let result;
  try {
    console.error(`bench: building ${ACTIONS} action directories for each of the 2 runners in ${scratch}`);
    for (const r of options.runners) runners.push({ ...prepareRunner(scratch, { ...r, memory: false }), code: codeVersion(r.checkout) });
    const limitBinary = buildLimit(scratch);
    const actions = limitActionDirectories(scratch, sizes.ab.throughput.inFlight);
    cgroups = await limitCgroups();
    const extras = ['--seccomp', ...cgroups.dirs.flatMap((dir) => ['--cgroup', dir])];
    const limit = { servers: [{ name: LIMIT, argv: [limitBinary, ...extras, '--serve'], env: BASELINE_ENV, log: join(scratch, 'limit.log') }], actions };
    console.error('bench: timing in bench/outside.py (--ab)');
    result = await outside({ mode: 'runner', ab: true, sizes, runners: runners.map(runnerSpec), limit });
    for (const r of runners) if (result.runnerExits[r.name] !== 0) problems.push(`runner ${r.name} exited ${result.runnerExits[r.name]} on SIGTERM`);
  } finally {
    cleanUp(scratch, runners, cgroups, problems);
  }
  if (problems.length > 0) throw new Error(`FAILURE:\n${problems.join('\n')}`);
  machine.loadEnd = os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
  const [a, b] = runners;
  const phases = Object.fromEntries(
    Object.entries(result.rounds).map(([phase, rounds]) => {
      const of = (role) =>
        summary(
          phase === 'throughput' ? '/s' : 'ms',
          rounds.map((round) => round[role]),
        );
      const ratios = (top, bottom) =>
        summary(
          '×',
          rounds.map((round) => round[top] / round[bottom]),
        );
      return [
        phase,
        { a: of('a'), b: of('b'), limit: of('limit'), bOverA: ratios('b', 'a'), aOverLimit: ratios('a', 'limit'), bOverLimit: ratios('b', 'limit') },
      ];
    }),
  );
  const doc = {
    date: new Date().toISOString(),
    quick: options.quick,
    method:
      "bench/outside.py ab_phases: two runners and the limit, each phase in rounds of alternating order (A first in even rounds); a round is each one's median (throughput: its rate); ratios per round",
    machine: { ...machine, python: `${result.python}, grpcio ${result.grpcioVersion}` },
    runners: runners.map(({ name, checkout, code }) => ({ name, checkout, code })),
    sizes: sizes.ab,
    load: result.load,
    phases,
  };
  printAb(doc, a.name, b.name);
  console.log('checked: both runners exited 0 on SIGTERM with no records left, nothing left mounted under the scratch directory');
  if (options.json) {
    writeFileSync(options.json, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`wrote ${options.json}`);
  }
}

function printAb(doc, a, b) {
  const { machine, runners, sizes, phases } = doc;
  console.log(`mountat runner A/B, measured from outside (bench/outside.py), ${doc.date}`);
  console.log(`  kernel ${machine.kernel}; ${machine.nproc} CPUs; node ${machine.node}; ${machine.python}; load ${machine.loadStart} → ${machine.loadEnd}`);
  for (const [role, r] of [
    ['A', runners[0]],
    ['B', runners[1]],
  ])
    console.log(`  ${role} ${r.name}: ${r.checkout} (${r.code})`);
  const range = (s, digits = 3) => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  const titles = {
    alternating: `one Run at a time, A and B in turn, an action of the limit's after each (${sizes.rounds} rounds × ${sizes.runs}; ms)`,
    backToBack: `back to back (${sizes.rounds} rounds × ${sizes.runs} each; ms)`,
    throughput: `${sizes.throughput.inFlight} in flight (${sizes.rounds} rounds × ${sizes.throughput.actions} each; actions/s)`,
  };
  for (const [phase, p] of Object.entries(phases)) {
    console.log(`\n${titles[phase] ?? phase}: medians over the rounds (min–max)`);
    console.log(`  A ${a}: ${range(p.a, 2)}   B ${b}: ${range(p.b, 2)}   limit: ${range(p.limit, 2)}`);
    console.log(`  B / A per round: ${range(p.bOverA)}${phase === 'throughput' ? ' (above 1: B does more)' : ' (below 1: B is faster)'}`);
    console.log(`  ÷ the limit per round: A ${range(p.aOverLimit, 2)}, B ${range(p.bOverLimit, 2)}`);
  }
  if (doc.quick) console.log('(--quick: counts too small for the figures to mean anything; a smoke run only)');
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('must run as root (the runner mounts)');
  if (!process.env.MOUNTAT_BENCH_OUTER_NS) {
    ensureDebianPackages({ 'python3-grpcio': () => pythonWorks({ grpc: true }), bubblewrap: () => existsSync(BWRAP) });
    if (!existsSync(join(REPO, 'dist', 'mountat-action')) || !existsSync(join(REPO, 'hooks', 'mountat-hook')))
      execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
    for (const r of options.runners) checkCheckout(r);
    if (!existsSync(CHROOT)) throw new Error(`${CHROOT} is missing (coreutils)`);
  }
  enterPrivateNamespace({ hostCheck: `/${SCRATCH_PREFIX}` });
  await (options.ab ? measureAb(options) : measure(options));
}

main().catch((error) => {
  console.error(`bench/runner.mjs: ${error.message}`);
  process.exit(1);
});
