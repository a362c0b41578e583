#!/usr/bin/env node
// The benchmark's engine suite (bench/run.mjs runs it). How much one attach+detach cycle of the
// default plan (proc, sysfs, tmpfs into a root known by its fd) costs through the engine, against
// the same system calls made from C and made straight through koffi; util-linux's mount/umount
// commands; what whole processes cost (`mountat exec`, the OCI hook, bwrap); and whole runc/crun
// containers with the hook against the same containers with the runtime's own mounts.
//
// usage: node bench/engine.mjs [--quick] [--disk] [--json FILE]   (as root; `npm run bench -- engine`)
//   --quick      small counts, for a smoke run (figures not worth quoting)
//   --disk       keep the scratch directory on the disk under os.tmpdir() instead of a tmpfs
//   --json FILE  also write the results as JSON
//
// Everything runs inside a private mount namespace (the script re-executes itself under
// `unshare --mount --propagation private`), so nothing it mounts can reach the host. At the
// end it checks that nothing is left mounted under its scratch directory and that every
// record and runtime state directory is empty.
// Setup only (the build, the re-execution, apt, the strace check). No figure comes from a process
// Node starts: bench/cycle.c times its own batches inside; whole processes are timed by bench/outside.py.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIELDS, parseBatch, timeBatch } from './measure.mjs';
import { makeContainerCommands, makeHookCommands, nonEmpty, startHookServer } from './oci.mjs';
import { closeRawRoot, openRawRoot, rawCycle } from './raw-koffi.mjs';
import { ensureDebianPackages, median, mountPoints, mountsUnder, PYTHON, pythonWorks, REPO, repRatios, run, summary, timeSpawns } from './util.mjs';

const SELF = fileURLToPath(import.meta.url);
/** Set for the re-executed child to the parent's mount namespace ("mnt:[…]"), which it must not be in. */
const IN_NAMESPACE = 'MOUNTAT_BENCH_IN_NAMESPACE';
/** Every scratch directory starts with this, so the host-side check can find strays. */
const SCRATCH_PREFIX = 'mountat-bench-';
/**
 * The environment every node-based process gets: the one hooks/mountat-hook's launcher gives
 * node. With the caller's environment `node -e 0` would not be the hook's baseline: on this
 * machine NODE_EXTRA_CA_CERTS alone makes every node start read and parse a CA bundle.
 */
const NODE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
/** The environment of the other timed processes (unshare, bwrap, runc, crun): they need only PATH. */
const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

// Counts, chosen so the whole run stays under three minutes (1.5-2.5 here) on 2 cores of a
// slow VM, where `node -e 0` takes 65-110 ms, one util-linux cycle (six processes) 60-110 ms
// and one container 40-520 ms. Every figure is the median of `reps` repetitions.
const SIZES = {
  full: {
    cycles: { cycles: 2000, reps: 5, warmup: 200 }, // engine, C, raw koffi: µs/cycle
    utilLinux: { cycles: 30, reps: 5, warmup: 3 }, // mount/umount processes: ms/cycle
    spawn: { runs: 10, reps: 5, warmup: 2 }, // whole-process actions: ms/run
    containers: { runs: 10, reps: 5, warmup: 1 }, // whole runc/crun containers: ms/run
  },
  quick: {
    cycles: { cycles: 50, reps: 3, warmup: 10 },
    utilLinux: { cycles: 5, reps: 3, warmup: 1 },
    spawn: { runs: 2, reps: 3, warmup: 1 },
    containers: { runs: 1, reps: 3, warmup: 1 },
  },
};

function parseArgs(argv) {
  const options = { quick: false, disk: false, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') options.quick = true;
    else if (argv[i] === '--disk') options.disk = true;
    else if (argv[i] === '--json' && argv[i + 1]) options.json = resolve(argv[++i]);
    else throw new Error(`usage: node bench/engine.mjs [--quick] [--disk] [--json FILE] (unknown argument ${JSON.stringify(argv[i])})`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------
// Outside the namespace: checks, build, re-execution.

/** The engine is imported from dist/ and the hook launcher built by `npm run build`. */
function ensureBuilt() {
  const needed = ['dist/mounts/index.js', 'dist/linux/index.js', 'hooks/mountat-hook'];
  if (needed.every((path) => existsSync(join(REPO, path)))) return;
  console.error('bench: dist/ or the hook launcher is missing, running `npm run build`');
  const result = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm run build failed');
}

/** Re-run this script under a private mount namespace; then check the host saw no mount of ours. */
function reexecInNamespace(argv) {
  const result = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, SELF, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, [IN_NAMESPACE]: readlinkSync('/proc/self/ns/mnt') },
  });
  if (result.error) throw new Error(`cannot run unshare (util-linux): ${result.error.message}`);
  const leaked = mountPoints().filter((point) => point.includes(`/${SCRATCH_PREFIX}`));
  if (leaked.length > 0) {
    console.error(`bench: FAILURE: mounts of the benchmark are visible on the host:\n  ${leaked.join('\n  ')}`);
    return 1;
  }
  return result.status ?? 1;
}

// ---------------------------------------------------------------------------------------
// Inside the namespace: the measurements.

function firstLine(command, args) {
  try {
    return run(command, args).split('\n')[0].trim();
  } catch {
    return 'unavailable';
  }
}

function machineInfo(scratchDescription) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  // x86 names the model; aarch64 kernels often give only implementer/part numbers.
  const field = (name) => cpuinfo.match(new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm'))?.[1]?.trim();
  const cpu = field('model name') ?? field('Hardware') ?? [field('CPU implementer'), field('CPU part')].filter(Boolean).join(' part ');
  return {
    kernel: firstLine('uname', ['-srvm']),
    arch: process.arch,
    cpu: cpu || 'unknown',
    nproc: Number(run('nproc', []).trim()),
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    cc: firstLine('cc', ['--version']),
    utilLinux: firstLine('mount', ['--version']),
    bwrap: firstLine('bwrap', ['--version']),
    runc: firstLine('runc', ['--version']),
    crun: firstLine('crun', ['--version']),
    python: `${firstLine(PYTHON, ['--version'])} (times the whole processes and containers: bench/outside.py)`,
    scratch: scratchDescription,
    code: codeVersion(),
    loadStart: loadAverage(),
  };
}

/** Which code was measured: the commit, whether the tree had changes, when dist/ was built. */
function codeVersion() {
  const head = firstLine('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  const dirty = firstLine('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no']) !== '';
  const built = statSync(join(REPO, 'dist/mounts/index.js')).mtime.toISOString();
  return `${head}${dirty ? ' with uncommitted changes' : ''}, dist/ built ${built}`;
}

/** Other work on the machine skews everything; the report shows how busy it was. */
function loadAverage() {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
}

/** Install a Debian package for a missing tool, as the brief allows; false if still missing. */
function ensureTool(path, pkg) {
  if (existsSync(path)) return true;
  console.error(`bench: ${path} missing, trying apt-get install -y ${pkg}`);
  const install = () => spawnSync('apt-get', ['install', '-y', pkg], { stdio: 'ignore' }).status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    install();
  }
  return existsSync(path);
}

/**
 * The scratch directory. By default a tmpfs is mounted on it (this namespace is private):
 * on this VM's ext4 the journaling of each cycle's mkdir/rmdir made the C figure swing
 * 512-2178 µs between repetitions, drowning what is measured. --disk keeps the plain directory.
 */
function makeScratch(disk) {
  const scratch = mkdtempSync(join(os.tmpdir(), SCRATCH_PREFIX));
  if (!disk) run('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=1g', 'mountat-bench', scratch]);
  const fsType = firstLine('findmnt', ['-n', '-o', 'FSTYPE', '-T', scratch]);
  const description = disk ? `${scratch} on the disk (${fsType}), --disk` : `${scratch} on a tmpfs mounted by the bench (${fsType})`;
  return { scratch, description, ownMount: !disk };
}

/**
 * The premise of comparing engine, C and raw koffi: they make the same calls. Checked on every
 * run with bench/check-syscalls.sh (strace), since the engine keeps changing under the bench.
 */
function checkSyscalls() {
  if (!ensureTool('/usr/bin/strace', 'strace')) return 'NOT CHECKED (no strace)';
  const result = spawnSync('bash', [join(REPO, 'bench/check-syscalls.sh')], { encoding: 'utf8' });
  if (result.status === 0) return result.stdout.split('\n')[0];
  console.error(`${result.stdout}${result.stderr}`);
  return 'DIFFERENT (diff above): the engine and C figures are not comparable';
}

/** One timed batch of the C program, in a process of its own with its own warm-up; same fields. */
function timeC(binary, rootDir, cycles, warmup) {
  return parseBatch(run(binary, [rootDir, String(cycles), '1', String(warmup)]));
}

const UNITS = {
  us: 'µs/cycle',
  user: 'user µs/cycle',
  sys: 'sys µs/cycle',
  nvcsw: 'vol. cs/cycle',
  nivcsw: 'invol. cs/cycle',
  onCpu: 'on-CPU µs/cycle',
  runQueue: 'run-queue µs/cycle',
};

/** Per kind, the per-repetition batches turned into one summary per field. */
function cycleSummaries(batches, cycles) {
  return Object.fromEntries(
    FIELDS.map((key) => [
      key,
      summary(
        UNITS[key],
        batches.map((b) => b[key]),
        cycles,
      ),
    ]),
  );
}

/**
 * (a) The engine in this very process, (b) bench/cycle.c and (c) the raw koffi floor
 * (bench/raw-koffi.mjs, also in this process), all on the same root. Interleaved: each
 * repetition runs one batch of each in turn, so slow drift of the VM hits all three alike.
 * All three do the default plan with its hardened proc (cycle.c and raw-koffi.mjs mirror the
 * covers); (a') the engine once more with `hardened: false` on proc, engine-only, is what the
 * covers cost.
 */
async function benchCycles(binDir, rootDir, { cycles, reps, warmup }) {
  // Imported only now: dist/ may have just been built.
  const { attach, detach, defaultPlan, parsePlan, DEFAULTS } = await import('../dist/mounts/index.js');
  const { openat2, constants: C } = await import('../dist/linux/index.js');
  const binary = join(binDir, 'cycle');
  run('cc', ['-O2', '-Wall', '-Wextra', '-o', binary, join(REPO, 'bench/cycle.c')]);
  const root = openat2(C.AT_FDCWD, rootDir, { flags: C.O_PATH | C.O_DIRECTORY | C.O_CLOEXEC, resolve: 0 });
  const rawRoot = openRawRoot(rootDir);
  const plan = defaultPlan();
  const bare = parsePlan({ mounts: DEFAULTS.plan.mounts.map((entry) => (entry.kind === 'proc' ? { ...entry, hardened: false } : entry)) });
  // detach() throws on any problem; also insist it did the whole job, as cycle.c does.
  const cycleOf = (thePlan) => () => {
    const report = detach(root, attach(root, thePlan));
    if (report.detached.length !== 3 || report.removed.length !== 3) throw new Error(`engine cycle incomplete: ${JSON.stringify(report)}`);
  };
  const engineCycle = cycleOf(plan);
  const bareCycle = cycleOf(bare);
  const rawOnce = () => rawCycle(rawRoot);
  try {
    for (let i = 0; i < warmup; i++) engineCycle();
    for (let i = 0; i < warmup; i++) bareCycle();
    for (let i = 0; i < warmup; i++) rawOnce();
    const batches = { engine: [], c: [], raw: [], engineBare: [] };
    for (let r = 0; r < reps; r++) {
      batches.engine.push(timeBatch(engineCycle, cycles));
      batches.c.push(timeC(binary, rootDir, cycles, warmup));
      batches.raw.push(timeBatch(rawOnce, cycles));
      batches.engineBare.push(timeBatch(bareCycle, cycles));
    }
    return Object.fromEntries(Object.entries(batches).map(([kind, list]) => [kind, cycleSummaries(list, cycles)]));
  } finally {
    root.close();
    closeRawRoot(rawRoot);
  }
}

/**
 * (d) The same three mounts with util-linux, one process per mount and per umount, and the
 * directories made and removed around them, as the engine does its own: one `sh` a cycle runs the
 * eight commands, timed by bench/outside.py (started from Node, each of the processes would pay a
 * fork of the whole Node process).
 */
async function benchUtilLinux(rootDir, { cycles, reps, warmup }) {
  const [proc, sys, tmp] = ['proc', 'sys', 'tmp'].map((name) => join(rootDir, name));
  const script = [
    `mkdir -m 755 ${proc} ${sys} ${tmp}`,
    `mount -t proc -o nosuid,nodev,noexec proc ${proc}`,
    `mount -t sysfs -o ro,nosuid,nodev,noexec sysfs ${sys}`,
    `mount -t tmpfs -o nosuid,nodev,mode=1777,size=512m tmpfs ${tmp}`,
    `umount -l ${tmp}`,
    `umount -l ${sys}`,
    `umount -l ${proc}`,
    `rmdir ${tmp} ${sys} ${proc}`,
  ].join(' && ');
  const timed = await timeSpawns(
    { cycle: { argv: ['/bin/sh', '-c', script], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } } },
    { runs: cycles, reps, warmup },
  );
  return { ...timed.cycle, unit: 'ms/cycle' };
}

/**
 * (e) Whole-process actions, interleaved: `node -e 0`, the OCI hook's two invocations, and
 * `mountat exec` next to `unshare --root` and bwrap. Each tool gets its own busybox root:
 * bwrap creates /proc, /sys and /tmp in the directory it binds as /, and runc would create
 * /dev, and those would change what the others do. Timed by bench/outside.py, which starts each
 * with posix_spawn (this process's spawnSync would add a fork of Node, about 9 ms, to each), in
 * a fixed order: createContainer must come before its poststop.
 */
async function benchSpawns(scratch, sizes, checkDirs, hookSocket) {
  const makeRoot = (name) => {
    const dir = join(scratch, name);
    run('bash', [join(REPO, 'scripts/make-busybox-root.sh'), dir]);
    return dir;
  };
  const execRoot = makeRoot('exec-root');
  const chrootRoot = makeRoot('chroot-root');
  const execState = join(scratch, 'exec-state');
  mkdirSync(execState);
  const hook = makeHookCommands(scratch, NODE_ENV, hookSocket);
  checkDirs.push(execState, hook.stateDir);
  const commands = {
    nodeStart: { argv: [process.execPath, '-e', '0'], env: NODE_ENV },
    hookCreate: hook.createContainer,
    hookPoststop: hook.poststop,
    hookCreateServer: hook.createContainerServer,
    hookPoststopServer: hook.poststopServer,
    unshareRoot: { argv: ['/usr/bin/unshare', `--root=${chrootRoot}`, '/bin/true'], env: TOOL_ENV },
    mountatExec: {
      argv: [process.execPath, join(REPO, 'bin/mountat.js'), 'exec', '--root', execRoot, '--state-dir', execState, '--', '/bin/true'],
      env: NODE_ENV,
    },
  };
  if (ensureTool('/usr/bin/bwrap', 'bubblewrap')) {
    const bwrapRoot = makeRoot('bwrap-root');
    commands.bwrap = {
      argv: ['/usr/bin/bwrap', '--bind', bwrapRoot, '/', '--proc', '/proc', '--ro-bind', '/sys', '/sys', '--tmpfs', '/tmp', '--unshare-pid', '/bin/true'],
      env: TOOL_ENV,
    };
  } else {
    console.error('bench: bwrap not installed and could not be: skipping it');
  }
  return timeSpawns(commands, sizes);
}

/**
 * (f) Whole containers, runc and crun, each with the hook (starting node, and through the hook
 * server) and with its own mounts, interleaved (timed by bench/outside.py).
 */
async function benchContainers(scratch, sizes, checkDirs, hookSocket) {
  const runtimes = [
    ['runc', '/usr/sbin/runc'],
    ['crun', '/usr/bin/crun'],
  ].filter(([name, path]) => {
    if (ensureTool(path, name)) return true;
    console.error(`bench: ${name} not installed and could not be: skipping it`);
    return false;
  });
  if (runtimes.length === 0) return {};
  const { commands, dirs } = makeContainerCommands(
    scratch,
    runtimes.map(([name]) => name),
    TOOL_ENV,
    hookSocket,
  );
  checkDirs.push(...dirs);
  return timeSpawns(commands, sizes);
}

/** user + sys per cycle, per repetition: the work done, without the waiting. */
function cpuTime(kind) {
  return summary(
    'CPU µs/cycle',
    kind.user.reps.map((user, r) => user + kind.sys.reps[r]),
    kind.user.perRep,
  );
}

function ratios(results) {
  const { cycles, utilLinux, spawns, containers } = results;
  const r = {
    engineOverC: repRatios(cycles.engine.us, cycles.c.us),
    engineOverRaw: repRatios(cycles.engine.us, cycles.raw.us),
    rawOverC: repRatios(cycles.raw.us, cycles.c.us),
    utilLinuxOverEngine: (utilLinux.median * 1000) / cycles.engine.us.median,
    engineCpuOverC: repRatios(cpuTime(cycles.engine), cpuTime(cycles.c)),
    hardenedOverBare: repRatios(cycles.engine.us, cycles.engineBare.us),
    hardenedExtraUs: cycles.engine.us.median - cycles.engineBare.us.median,
  };
  r.hookCreateOverNode = repRatios(spawns.hookCreate, spawns.nodeStart);
  r.hookPoststopOverNode = repRatios(spawns.hookPoststop, spawns.nodeStart);
  r.mountatExecOverNodePlusUnshare = spawns.mountatExec.median / (spawns.nodeStart.median + spawns.unshareRoot.median);
  if (spawns.bwrap) r.mountatExecOverBwrap = spawns.mountatExec.median / spawns.bwrap.median;
  for (const runtime of ['runc', 'crun']) {
    const hook = containers[`${runtime} hook`];
    const builtin = containers[`${runtime} builtin`];
    if (hook && builtin) r[`${runtime}HookOverBuiltin`] = { ...repRatios(hook, builtin), extraMs: hook.median - builtin.median };
    const server = containers[`${runtime} server`];
    if (server && builtin) r[`${runtime}ServerOverBuiltin`] = { ...repRatios(server, builtin), extraMs: server.median - builtin.median };
  }
  return r;
}

const fmt = (v, digits = 1) => v.toFixed(digits);

function printRows(title, rows) {
  console.log(`\n${title}`);
  console.log(`  ${'what'.padEnd(48)} ${'unit'.padEnd(16)} ${'median'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}  reps × n`);
  for (const [name, s, digits] of rows.filter(([, s]) => s)) {
    console.log(
      `  ${name.padEnd(48)} ${s.unit.padEnd(16)} ${fmt(s.median, digits).padStart(9)} ${fmt(s.min, digits).padStart(9)} ${fmt(s.max, digits).padStart(9)}  ${s.reps.length} × ${s.perRep}`,
    );
  }
}

function printRatio(name, ratio, note = '') {
  const reps = ratio.reps.map((v) => fmt(v, 2)).join(' ');
  console.log(`  ${name.padEnd(36)} median ${fmt(ratio.median, 2)}×  per rep: ${reps}${note}`);
}

function printReport(machine, sizes, results, r, quick) {
  console.log('\nmachine');
  for (const [key, value] of Object.entries(machine)) console.log(`  ${key.padEnd(10)} ${value}`);
  const { cycles: cy, utilLinux, spawns: sp, containers: ct } = results;
  printRows('attach+detach of the default plan, proc hardened (interleaved per repetition: engine, C, raw koffi, engine unhardened)', [
    ['engine, in-process', cy.engine.us, 1],
    ['C, same syscalls (bench/cycle.c)', cy.c.us, 1],
    ['raw koffi, same syscalls (bench/raw-koffi.mjs)', cy.raw.us, 1],
    ['engine, proc hardened: false', cy.engineBare.us, 1],
    ['util-linux mkdir, mount ×3, umount -l ×3, rmdir in one sh (no covers)', utilLinux, 2],
  ]);
  // Process CPU covers every thread (Node's GC and compiler helpers too); on-CPU, run queue and
  // asleep are the measuring thread's own, and asleep is mostly umount's RCU grace periods.
  console.log("\n  where a cycle's time goes (medians, µs per cycle; context switches per cycle)");
  const head = ['process user', 'process sys', 'thread on-CPU', 'run queue', 'asleep', 'vol. cs', 'invol. cs'];
  console.log(`  ${''.padEnd(10)} ${head.map((h) => h.padStart(13)).join(' ')}`);
  for (const [name, kind] of [
    ['engine', cy.engine],
    ['C', cy.c],
    ['raw koffi', cy.raw],
    ['unhardened', cy.engineBare],
  ]) {
    const m = (key) => kind[key].median;
    const asleep = median(kind.us.reps.map((us, r) => us - kind.onCpu.reps[r] - kind.runQueue.reps[r]));
    const cells = [fmt(m('user')), fmt(m('sys')), fmt(m('onCpu')), fmt(m('runQueue')), fmt(asleep), fmt(m('nvcsw'), 3), fmt(m('nivcsw'), 3)];
    console.log(`  ${name.padEnd(10)} ${cells.map((c) => c.padStart(13)).join(' ')}`);
  }
  printRows('whole processes (interleaved, one of each per round; timed by bench/outside.py, started with posix_spawn)', [
    ['node -e 0', sp.nodeStart, 1],
    ['mountat-hook createContainer', sp.hookCreate, 1],
    ['mountat-hook poststop', sp.hookPoststop, 1],
    ['mountat-hook createContainer, hook server', sp.hookCreateServer, 1],
    ['mountat-hook poststop, hook server', sp.hookPoststopServer, 1],
    ['unshare --root=ROOT /bin/true', sp.unshareRoot, 1],
    ['mountat exec --root ROOT -- /bin/true', sp.mountatExec, 1],
    ['bwrap --proc --ro-bind /sys --tmpfs', sp.bwrap, 1],
  ]);
  printRows('whole containers, busybox /bin/true (interleaved; timed by bench/outside.py, started with posix_spawn)', [
    ['runc, mounts by mountat-hook', ct['runc hook'], 1],
    ['runc, mounts by mountat-hook via hook server', ct['runc server'], 1],
    ['runc, its own proc/sysfs/tmpfs', ct['runc builtin'], 1],
    ['crun, mounts by mountat-hook', ct['crun hook'], 1],
    ['crun, mounts by mountat-hook via hook server', ct['crun server'], 1],
    ['crun, its own proc/sysfs/tmpfs', ct['crun builtin'], 1],
  ]);
  console.log('\nratios (per repetition, and their median)');
  printRatio('engine / C', r.engineOverC, `  (goal ≤ 1.5×: ${r.engineOverC.median <= 1.5 ? 'met' : 'NOT met'})`);
  printRatio('engine / raw koffi', r.engineOverRaw, "  (the engine's own overhead)");
  printRatio('raw koffi / C', r.rawOverC, '  (the floor for any Node code)');
  printRatio('engine / C, CPU time (user+sys)', r.engineCpuOverC, '  (without the waits)');
  printRatio('engine hardened / hardened: false', r.hardenedOverBare, `  (the covers: ${fmt(r.hardenedExtraUs)} µs a cycle)`);
  printRatio('hook createContainer / node -e 0', r.hookCreateOverNode, `  (goal ≤ 1.3×: ${r.hookCreateOverNode.median <= 1.3 ? 'met' : 'NOT met'})`);
  printRatio('hook poststop / node -e 0', r.hookPoststopOverNode);
  for (const runtime of ['runc', 'crun']) {
    const ratio = r[`${runtime}HookOverBuiltin`];
    if (ratio) printRatio(`${runtime}: with hook / built-in mounts`, ratio, `  (${fmt(ratio.extraMs)} ms more)`);
    const server = r[`${runtime}ServerOverBuiltin`];
    if (server)
      printRatio(`${runtime}: hook server / built-in`, server, `  (${fmt(server.extraMs)} ms more; goal ≤ 2.0×: ${server.median <= 2 ? 'met' : 'NOT met'})`);
  }
  console.log('ratios of medians');
  console.log(`  util-linux / engine                         ${fmt(r.utilLinuxOverEngine, 1)}×`);
  console.log(`  mountat exec / (node -e 0 + unshare --root) ${fmt(r.mountatExecOverNodePlusUnshare, 2)}×`);
  if (r.mountatExecOverBwrap !== undefined) console.log(`  mountat exec / bwrap                        ${fmt(r.mountatExecOverBwrap, 1)}×`);
  console.log(`\nsizes: ${JSON.stringify(sizes)}`);
  if (quick) console.log('(--quick: counts too small for the figures to mean anything; a smoke run only)');
}

/**
 * The end-of-run checks: anything still mounted under the scratch dir (other than the scratch
 * tmpfs itself) is a leak of the engine, the hook or a failed run, and so is a record left in a
 * state directory. Say so loudly, unmount what is left so the scratch can go, report failure.
 */
function checkAndRemoveScratch({ scratch, ownMount }, checkDirs) {
  let ok = true;
  const records = nonEmpty(checkDirs);
  if (records.length > 0) {
    console.error(`\nbench: FAILURE: state directories not empty at the end:\n  ${records.join('\n  ')}`);
    ok = false;
  } else if (checkDirs.length > 0) {
    console.log(`checked: the ${checkDirs.length} record and runtime state directories are empty`);
  }
  const leftovers = mountsUnder(scratch).filter((point) => !(ownMount && point === scratch));
  if (leftovers.length > 0) {
    console.error(`\nbench: FAILURE: still mounted under ${scratch} at the end:\n  ${leftovers.join('\n  ')}`);
    for (const point of leftovers) spawnSync('umount', ['-l', point], { stdio: 'inherit' });
    ok = false;
  } else {
    console.log(`checked: nothing left mounted under ${scratch}${ownMount ? ' but its own tmpfs' : ''}`);
  }
  // Never recurse into a live mount (a tmpfs would be emptied, proc/sys would error).
  if (mountsUnder(scratch).every((point) => ownMount && point === scratch)) {
    if (ownMount) run('umount', [scratch]);
    rmSync(scratch, { recursive: true, force: true });
  } else {
    console.error(`bench: left ${scratch} in place: it still has mounts`);
  }
  return ok;
}

async function measure(options) {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  if (!ensureTool('/bin/busybox', 'busybox-static')) throw new Error('bench: /bin/busybox is needed for the process and container roots');
  const scratchInfo = makeScratch(options.disk);
  const { scratch } = scratchInfo;
  const machine = machineInfo(scratchInfo.description);
  const checkDirs = [];
  let ok = false;
  try {
    const rootDir = join(scratch, 'root');
    const binDir = join(scratch, 'bin');
    mkdirSync(rootDir);
    mkdirSync(binDir);
    const started = Date.now();
    const results = {};
    const step = (label) => console.error(`bench: ${label} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    step('checking that engine, C and raw koffi make the same system calls');
    machine.syscalls = checkSyscalls();
    step('(a-c) engine, C, raw koffi, interleaved');
    results.cycles = await benchCycles(binDir, rootDir, sizes.cycles);
    step('(d) util-linux mount/umount');
    results.utilLinux = await benchUtilLinux(rootDir, sizes.utilLinux);
    step('(e) whole processes');
    const hookServer = await startHookServer(scratch, NODE_ENV);
    try {
      results.spawns = await benchSpawns(scratch, sizes.spawn, checkDirs, hookServer.socket);
      step('(f) whole containers');
      results.containers = await benchContainers(scratch, sizes.containers, checkDirs, hookServer.socket);
    } finally {
      await hookServer.stop();
    }
    const totalSeconds = (Date.now() - started) / 1000;
    machine.loadEnd = loadAverage();
    step('done');
    const r = ratios(results);
    printReport(machine, sizes, results, r, options.quick);
    if (options.json) {
      const document = { date: new Date().toISOString(), quick: options.quick, machine, sizes, results, ratios: r, totalSeconds };
      writeFileSync(options.json, `${JSON.stringify(document, null, 2)}\n`);
      console.log(`wrote ${options.json}`);
    }
    ok = true;
  } finally {
    // Runs after a failure too: a half-done run is exactly when mounts may be left.
    if (!checkAndRemoveScratch(scratchInfo, checkDirs)) ok = false;
  }
  return ok ? 0 : 1;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: must run as root (it mounts filesystems)');
  const parentNamespace = process.env[IN_NAMESPACE];
  if (!parentNamespace) {
    ensureBuilt();
    ensureDebianPackages({ python3: () => pythonWorks() });
    return reexecInNamespace(process.argv.slice(2));
  }
  // The env var only says we were re-executed; the kernel says whether unshare really took.
  if (readlinkSync('/proc/self/ns/mnt') === parentNamespace) {
    throw new Error(`bench: ${IN_NAMESPACE} is set but this is still the parent's mount namespace: refusing to mount`);
  }
  return measure(options);
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
