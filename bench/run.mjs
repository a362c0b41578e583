#!/usr/bin/env node
// The benchmark's one entry point: runs the suites named, one after another, each in a process of
// its own, and says which passed. It only orchestrates: every figure is taken inside a suite, by
// bench/cycle.c and in-process batches (engine) or by a timer outside Node (bench/outside.py for
// engine, runner and image; probe.py is one itself), never from a process this one starts.
//
// usage: npm run bench -- <suite...> [--quick] [--json FILE] [suite options]   (as root)
//   engine   bench/engine.mjs: attach+detach cycles against C and raw koffi, util-linux, whole
//            processes (`mountat exec`, the OCI hook, bwrap) and runc/crun containers
//   runner   bench/runner.mjs: the runner per action against bwrap, chroot and the limit (bench/limit.c),
//            throughput, CPU per action, memory
//   image    bench/image.mjs: the runner image in a Docker engine of its own
//   probe    bench/probe.py: what one readiness probe costs, by the way it is made
//   all      engine, runner, probe and image, in that order
//   --quick      small counts, for a smoke run (figures not worth quoting)
//   --json FILE  write {date, quick, suites: {NAME: the suite's own JSON}} to FILE
//   Other options go to the suite, when only one is named: `engine --disk`, `runner --runner
//   NAME=CHECKOUT`, `probe --rounds N` (see each file's header).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { PYTHON, REPO } from './util.mjs';

/** Each suite's command, run from the repository; `all` runs them in this order (Docker's last). */
const SUITES = {
  engine: [process.execPath, 'bench/engine.mjs'],
  runner: [process.execPath, 'bench/runner.mjs'],
  probe: [PYTHON, 'bench/probe.py'],
  image: [process.execPath, 'bench/image.mjs'],
};
const USAGE = `usage: npm run bench -- <${[...Object.keys(SUITES), 'all'].join('|')}>... [--quick] [--json FILE] [suite options]`;

function parseArgs(argv) {
  const options = { suites: [], quick: false, json: undefined, extra: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === 'all') options.suites.push(...Object.keys(SUITES));
    else if (arg in SUITES) options.suites.push(arg);
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--json' && argv[i + 1]) options.json = resolve(argv[++i]);
    else if (arg === '--help' || arg === '-h') throw new Error(USAGE);
    else if (arg.startsWith('-')) {
      // A suite's own option, and its value if it takes one (the next argument, unless an option or a suite).
      options.extra.push(arg);
      if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('-') && !(argv[i + 1] in SUITES) && argv[i + 1] !== 'all') options.extra.push(argv[++i]);
    } else throw new Error(`${USAGE}\nunknown suite ${JSON.stringify(arg)}`);
  }
  options.suites = [...new Set(options.suites)];
  if (options.suites.length === 0) throw new Error(`${USAGE}\nname at least one suite`);
  if (options.extra.length > 0 && options.suites.length > 1)
    throw new Error(`${USAGE}\n${options.extra.join(' ')}: a suite's own options go with one suite only`);
  return options;
}

/** The suites run from dist/, the starter and the hook launcher: built once here if missing. */
function ensureBuilt() {
  const needed = ['dist/cli/main.js', 'dist/mounts/index.js', 'dist/mountat-action', 'hooks/mountat-hook'];
  if (needed.every((path) => existsSync(join(REPO, path)))) return;
  console.error('bench: the build is missing, running `npm run build`');
  if (spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'inherit' }).status !== 0) throw new Error('npm run build failed');
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: run as root (the suites mount filesystems and start runners)');
  ensureBuilt();
  const scratch = options.json ? mkdtempSync(join(os.tmpdir(), 'mountat-bench-json-')) : undefined;
  const outcomes = [];
  try {
    for (const name of options.suites) {
      const [command, script] = SUITES[name];
      const json = scratch && join(scratch, `${name}.json`);
      const args = [script, ...(options.quick ? ['--quick'] : []), ...(json ? ['--json', json] : []), ...options.extra];
      console.log(`\n== bench ${name}: ${[command === PYTHON ? PYTHON : 'node', ...args].join(' ')}`);
      const started = Date.now();
      const result = spawnSync(command, args, { cwd: REPO, stdio: 'inherit' });
      const seconds = (Date.now() - started) / 1000;
      const ok = result.status === 0;
      outcomes.push({
        name,
        ok,
        seconds,
        json: ok && json && existsSync(json) ? json : undefined,
        why: result.error?.message ?? (result.signal ? `killed by ${result.signal}` : `exit ${result.status}`),
      });
    }
    if (options.json) {
      const suites = Object.fromEntries(outcomes.filter((o) => o.json).map((o) => [o.name, JSON.parse(readFileSync(o.json, 'utf8'))]));
      writeFileSync(options.json, `${JSON.stringify({ date: new Date().toISOString(), quick: options.quick, suites }, null, 2)}\n`);
      console.log(`\nwrote ${options.json}`);
    }
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  console.log('');
  for (const o of outcomes) console.log(`bench ${o.name}: ${o.ok ? 'ok' : `FAILED (${o.why})`}, ${o.seconds.toFixed(0)} s`);
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 2;
}
