#!/usr/bin/env node
// The runner's benchmark: what one action costs through `mountat runner` (a Run of /bin/true
// over its UNIX socket, with the default mounts and a PID namespace), against the same command
// started chrooted without mounts (`unshare --root`) and bubblewrap doing the same mounts, all
// timed interleaved in one run; then throughput with 16 actions in flight, and the runner's peak
// RSS with 32 in flight; and the same Run through a second runner with Prometheus metrics on, for
// their cost. Re-executes itself in a private mount namespace.
//
// usage: node bench/runner.mjs [--quick] [--json FILE]        (as root; `npm run bench:runner`)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { benchOptions, enterPrivateNamespace, median, REPO, runAction, summary } from './util.mjs';

const SIZES = {
  full: { runs: 20, reps: 5, warmup: 5, throughputPerClient: 25, clients: 16, rssActions: 32 },
  quick: { runs: 3, reps: 2, warmup: 1, throughputPerClient: 3, clients: 16, rssActions: 32 },
};

function startRunner(dir, build, name = 'runner', extra = {}) {
  const socket = join(dir, `${name}.sock`);
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify({ buildDirectoryPath: build, grpcServers: [{ listenPaths: [socket] }], stateDirectory: join(dir, `${name}-state`), logLevel: 'warn', ...extra }));
  const child = spawn(join(REPO, 'bin', 'mountat.js'), ['runner', '--config', config], { stdio: ['ignore', 'inherit', 'inherit'] });
  return { child, socket };
}

async function waitFor(path) {
  for (let i = 0; i < 400 && !existsSync(path); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!existsSync(path)) throw new Error(`${path} did not appear`);
}

function client(socket) {
  // Imported here: dist/ must exist first.
  return import(join(REPO, 'dist', 'runner', 'index.js')).then(({ loadRunnerProto }) => new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${socket}`, credentials.createInsecure()));
}

function spawnTimed(command, args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${result.status}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main() {
  const { sizes, jsonFile } = benchOptions(SIZES);
  enterPrivateNamespace();

  const scratch = mkdtempSync(join(os.tmpdir(), 'mountat-bench-runner-'));
  // tmpfs: mkdir/rmdir of mountpoints on this VM's ext4 journal would dominate and wobble.
  execFileSync('mount', ['-t', 'tmpfs', 'bench', scratch]);
  const build = join(scratch, 'build');
  const actions = Array.from({ length: sizes.rssActions }, (_, i) => `a${i}`);
  for (const action of actions) {
    execFileSync(join(REPO, 'scripts', 'make-busybox-root.sh'), [join(build, action, 'root')]);
    mkdirSync(join(build, action, 'tmp'));
  }
  const chrootRoot = join(build, 'a0', 'root');
  const { child, socket } = startRunner(scratch, build);
  // A second runner on the same build directory, with Prometheus metrics on, for their cost.
  const metricsConfig = { global: { diagnosticsHttpServer: { httpServers: [{ listenAddresses: ['127.0.0.1:0'] }], enablePrometheus: true } } };
  const withMetrics = startRunner(scratch, build, 'metrics-runner', metricsConfig);
  await waitFor(socket);
  await waitFor(withMetrics.socket);
  const stub = await client(socket);
  const metricsStub = await client(withMetrics.socket);

  // 1. Per action, interleaved: runner Run, unshare --root, bwrap.
  const bwrapArgs = ['--bind', chrootRoot, '/', '--proc', '/proc', '--ro-bind', '/sys', '/sys', '--tmpfs', '/tmp', '--unshare-pid', '/bin/true'];
  const per = { runner: [], runnerWithMetrics: [], unshareRoot: [], bwrap: [] };
  for (let i = 0; i < sizes.warmup; i++) {
    await runAction(stub, 'a0');
    await runAction(metricsStub, 'a1');
    spawnTimed('unshare', [`--root=${chrootRoot}`, '/bin/true']);
    spawnTimed('bwrap', bwrapArgs);
  }
  for (let r = 0; r < sizes.reps; r++) {
    const total = { runner: 0, runnerWithMetrics: 0, unshareRoot: 0, bwrap: 0 };
    for (let i = 0; i < sizes.runs; i++) {
      // The two runners take turns going first, so neither always runs on the warmer machine.
      const pair = i % 2 === 0 ? [['runner', stub, 'a0'], ['runnerWithMetrics', metricsStub, 'a1']] : [['runnerWithMetrics', metricsStub, 'a1'], ['runner', stub, 'a0']];
      for (const [name, which, action] of pair) {
        const start = process.hrtime.bigint();
        await runAction(which, action);
        total[name] += Number(process.hrtime.bigint() - start) / 1e6;
      }
      total.unshareRoot += spawnTimed('unshare', [`--root=${chrootRoot}`, '/bin/true']);
      total.bwrap += spawnTimed('bwrap', bwrapArgs);
    }
    for (const key of Object.keys(per)) per[key].push(total[key] / sizes.runs);
  }
  const perAction = Object.fromEntries(Object.entries(per).map(([key, values]) => [key, summary('ms/action', values, sizes.runs)]));

  // 2. Throughput: 16 clients, each running actions back to back in its own action directory.
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: sizes.clients }, async (_, c) => {
      for (let i = 0; i < sizes.throughputPerClient; i++) await runAction(stub, actions[c]);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const throughput = (sizes.clients * sizes.throughputPerClient) / seconds;

  // 3. Peak RSS of the runner with 32 actions in flight (each sleeps so they overlap).
  const rssBefore = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);
  await Promise.all(
    actions.map((action) => runAction(stub, action, ['sleep', '0.5'])),
  );
  const peakKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);

  stub.close();
  metricsStub.close();
  for (const runner of [child, withMetrics.child]) {
    runner.kill('SIGTERM');
    await new Promise((resolve) => runner.once('exit', resolve));
  }
  const left = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.split(' ')[4]?.startsWith(`${build}/`));
  execFileSync('umount', [scratch]);
  rmSync(scratch, { recursive: true, force: true });
  if (left.length > 0) throw new Error(`mounts left under the build directory: ${left.join('\n')}`);

  const results = {
    machine: { kernel: os.release(), arch: process.arch, cpu: os.cpus()[0]?.model, cpus: os.cpus().length, node: process.version },
    sizes,
    perAction,
    ratios: {
      runnerOverBwrap: median(per.runner.map((v, r) => v / per.bwrap[r])),
      runnerOverUnshareRoot: median(per.runner.map((v, r) => v / per.unshareRoot[r])),
      runnerExtraMsOverUnshareRoot: median(per.runner.map((v, r) => v - per.unshareRoot[r])),
      withMetricsOverWithout: median(per.runnerWithMetrics.map((v, r) => v / per.runner[r])),
    },
    throughput: { clients: sizes.clients, actions: sizes.clients * sizes.throughputPerClient, seconds, actionsPerSecond: throughput },
    rss: { idleKiB: rssBefore, peakKiBAt32: peakKiB },
  };
  const f = (n, d = 2) => n.toFixed(d);
  console.log(`machine: ${results.machine.kernel} ${results.machine.arch}, ${results.machine.cpus}× ${results.machine.cpu}, node ${results.machine.node}`);
  console.log(`per action (median of ${sizes.reps} reps × ${sizes.runs} runs, interleaved):`);
  for (const [name, s] of Object.entries(perAction)) console.log(`  ${name.padEnd(12)} ${f(s.median)} ms  (min ${f(s.min)}, max ${f(s.max)})`);
  console.log(`  runner / bwrap ${f(results.ratios.runnerOverBwrap)}×, runner / unshare --root ${f(results.ratios.runnerOverUnshareRoot)}× (+${f(results.ratios.runnerExtraMsOverUnshareRoot)} ms)`);
  console.log(`  runner with Prometheus metrics / without ${f(results.ratios.withMetricsOverWithout, 3)}×`);
  console.log(`throughput: ${results.throughput.actions} actions by ${sizes.clients} clients in ${f(seconds)} s = ${f(throughput, 1)} actions/s`);
  console.log(`runner RSS: ${f(rssBefore / 1024, 1)} MiB idle, peak ${f(peakKiB / 1024, 1)} MiB with ${sizes.rssActions} actions in flight`);
  console.log('nothing left mounted under the build directory');
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify(results, null, 2));
}

main().catch((error) => {
  console.error(`bench/runner.mjs: ${error.message}`);
  process.exit(1);
});
