#!/usr/bin/env node
// The runner image's benchmark: what the container costs. In one run, with a Docker engine of its
// own (scripts/docker/dockerd.sh) and the image built on locally made bases (as the tests do):
// the build, the image's size, the time from `docker run` to the first successful CheckReadiness,
// a Run of /bin/true through the runner in the container (with Docker's default seccomp filter, and
// without it) against the same Run through a runner started on the host (interleaved; the
// baseline), and `docker stop` until the runner has exited.
// Re-executes itself in a private mount namespace; stops the engine at the end.
//
// usage: node bench/image.mjs [--quick] [--json FILE]        (as root; `npm run bench -- image`)
// Setup and cleanup only (mounts, roots, docker inspect/rm/logs): every figure is taken by bench/outside.py.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { benchOptions, ensureDebianPackages, enterPrivateNamespace, outside, pythonWorks, REPO, repRatios, run, summary } from './util.mjs';

const SIZES = { full: { runs: 20, reps: 5, warmup: 5 }, quick: { runs: 3, reps: 2, warmup: 1 } };
const IMAGE = 'mountat-runner:bench';
// What docs/operations.md#container-image documents: the runner's own (SYS_CHROOT as Docker's default seccomp
// profile refuses pivot_root), and what its root actions keep.
const CAPS = [
  '--cap-drop',
  'ALL',
  ...['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID'].flatMap((cap) => ['--cap-add', cap]),
];

/** argv[0] for bench/outside.py, which takes absolute paths only: `name` as PATH finds it. */
function which(name) {
  const found = (process.env.PATH ?? '')
    .split(':')
    .map((dir) => join(dir, name))
    .find((path) => existsSync(path));
  if (!found) throw new Error(`${name} is not on PATH`);
  return found;
}

/**
 * One run of a command, timed by bench/outside.py (posix_spawn; Node's spawnSync would add a fork of
 * this process to the figure); its stdout and stderr go to `output`. ms, and what it printed.
 */
async function timedOnce(name, argv, env, output) {
  try {
    const result = await outside({ mode: 'spawn', commands: { [name]: { argv, env, output } }, runs: 1, reps: 1, warmup: 0 });
    return { ms: result.perRep[name][0], output: readFileSync(output, 'utf8') };
  } catch (error) {
    console.error(`bench/image: ${name} failed; the end of its output:\n${existsSync(output) ? readFileSync(output, 'utf8').slice(-2000) : '(none)'}`);
    throw error;
  }
}

async function main() {
  const { sizes, jsonFile } = benchOptions(SIZES);
  if (!process.env.MOUNTAT_BENCH_OUTER_NS) ensureDebianPackages({ 'python3-grpcio': () => pythonWorks({ grpc: true }) });
  enterPrivateNamespace();

  const scratch = mkdtempSync(join(os.tmpdir(), 'mountat-bench-image-'));
  const engineDir = join(scratch, 'engine');
  const host = run(join(REPO, 'scripts', 'docker', 'dockerd.sh'), ['start', engineDir]).trim();
  const dockerEnv = { ...process.env, DOCKER_HOST: host };
  const DOCKER = which('docker');
  const docker = (args) => run(DOCKER, args, { env: dockerEnv, maxBuffer: 64 << 20 });
  const results = {};
  const worker = join(scratch, 'worker');
  try {
    const log = (name) => join(scratch, `${name}.log`);
    const bases = await timedOnce('base root filesystems', [join(REPO, 'scripts', 'docker', 'make-base-rootfs.sh')], process.env, log('bases'));
    results.baseRootfsMs = bases.ms;
    const dir = bases.output.trim().split('\n').pop();
    results.importMs = 0;
    for (const base of ['runtime', 'build'])
      results.importMs += (
        await timedOnce(`import ${base}`, [DOCKER, 'import', join(dir, `${base}.tar`), `mountat-base/${base}:local`], dockerEnv, log(`import-${base}`))
      ).ms;
    const build = [
      'build',
      '--network',
      'host',
      '--build-arg',
      'BUILD_BASE=mountat-base/build:local',
      '--build-arg',
      'RUNTIME_BASE=mountat-base/runtime:local',
      '-t',
      IMAGE,
      REPO,
    ];
    results.buildMs = (await timedOnce('docker build', [DOCKER, ...build], dockerEnv, log('build'))).ms;
    results.imageBytes = Number(docker(['image', 'inspect', '--format', '{{.Size}}', IMAGE]).trim());

    // The worker's directory: tmpfs (as bench/runner.mjs, so ext4's journal does not dominate),
    // shared, bound into the container rslave; the host's runner uses a build directory beside it.
    mkdirSync(worker);
    execFileSync('mount', ['-t', 'tmpfs', 'bench', worker]);
    execFileSync('mount', ['--make-shared', worker]);
    for (const build of ['build', 'host-build', 'unconfined-build']) {
      execFileSync(join(REPO, 'scripts', 'make-busybox-root.sh'), [join(worker, build, 'a0', 'root')]);
      mkdirSync(join(worker, build, 'a0', 'tmp'));
    }

    // The same image without Docker's seccomp filter, on a build directory and socket of its own:
    // how much of the difference to the host is the filter run on every system call.
    const unconfinedConfig = join(scratch, 'unconfined.json');
    writeFileSync(
      unconfinedConfig,
      JSON.stringify({ buildDirectoryPath: '/worker/unconfined-build', grpcServers: [{ listenPaths: ['/worker/unconfined-runner'] }] }),
    );
    const hostConfig = join(scratch, 'host-runner.json');
    const hostSocket = join(scratch, 'host-runner.sock');
    writeFileSync(
      hostConfig,
      JSON.stringify({
        buildDirectoryPath: join(worker, 'host-build'),
        grpcServers: [{ listenPaths: [hostSocket] }],
        stateDirectory: join(scratch, 'state'),
        logLevel: 'warn',
      }),
    );
    const dockerRun = (extra) => [DOCKER, 'run', '-d', ...CAPS, ...extra, '-v', `${worker}:/worker:rw,rslave`];
    // bench/outside.py starts the containers (docker run -d) and the host's runner, each with
    // posix_spawn, times each to its first CheckReadiness OK, the Runs through each (interleaved),
    // and the container's stop; it stops the host's runner with SIGTERM.
    const timed = await outside({
      mode: 'image',
      containers: {
        container: { argv: [...dockerRun([]), IMAGE], env: dockerEnv, output: log('run-container'), socket: join(worker, 'runner') },
        unconfined: {
          argv: [...dockerRun(['--security-opt', 'seccomp=unconfined', '-v', `${unconfinedConfig}:/config/runner.json:ro`]), IMAGE],
          env: dockerEnv,
          output: log('run-unconfined'),
          socket: join(worker, 'unconfined-runner'),
        },
      },
      host: { argv: [join(REPO, 'bin', 'mountat.js'), 'runner', '--config', hostConfig], env: process.env, output: log('host-runner'), socket: hostSocket },
      sizes,
      action: 'a0',
      stop: { argv: [DOCKER, 'stop', '--time', '20'], env: dockerEnv },
    });
    results.startToReadyMs = timed.readyMs.container;
    results.hostStartToReadyMs = timed.readyMs.host;
    const per = timed.run.perRep;
    results.run = Object.fromEntries(Object.keys(per).map((name) => [name, summary('ms/action', per[name], sizes.runs)]));
    results.run.ratio = repRatios(results.run.container, results.run.host);
    results.run.unconfinedRatio = repRatios(results.run.unconfined, results.run.host);
    results.stopMs = timed.stopMs;
    if (timed.hostRunnerExit !== 0) throw new Error(`the host's runner exited ${timed.hostRunnerExit} on SIGTERM; its log: ${log('host-runner')}`);
    docker(['rm', '-f', timed.ids.unconfined]);
    const id = timed.ids.container;
    results.exitCode = Number(docker(['inspect', '--format', '{{.State.ExitCode}}', id]).trim());
    if (results.exitCode !== 0)
      console.error(
        `bench/image: the runner exited ${results.exitCode}; its last log lines:\n${spawnSync(DOCKER, ['logs', '--tail', '5', id], { env: dockerEnv, encoding: 'utf8' }).stdout.slice(-1500)}`,
      );
    docker(['rm', id]);
    results.mountsLeftUnderWorker = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((line) => line.split(' ')[4]?.startsWith(`${worker}/`)).length;
  } finally {
    // Whatever failed above: the engine stopped, the worker's tmpfs off, then the scratch removed
    // (an error here must not hide the one that brought us here).
    run(join(REPO, 'scripts', 'docker', 'dockerd.sh'), ['stop', engineDir]);
    spawnSync('umount', ['--lazy', worker]);
    rmSync(scratch, { recursive: true, force: true });
  }

  const r = results.run;
  const range = (x) => `${x.median.toFixed(2)} (${x.min.toFixed(2)}–${x.max.toFixed(2)})`;
  const ratio = (x) => `${x.median.toFixed(3)} (${x.min.toFixed(3)}–${x.max.toFixed(3)})`;
  const lines = [
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, Linux ${os.release()}, node ${process.version}`,
    `base root filesystems: ${(results.baseRootfsMs / 1000).toFixed(1)} s (cached when under a few seconds), import ${(results.importMs / 1000).toFixed(1)} s`,
    `docker build (no layer cache): ${(results.buildMs / 1000).toFixed(1)} s; image ${(results.imageBytes / 1e6).toFixed(0)} MB`,
    `docker run → first CheckReadiness OK: ${results.startToReadyMs.toFixed(0)} ms (the runner started on the host: ${results.hostStartToReadyMs.toFixed(0)} ms)`,
    `Run of /bin/true (${sizes.reps} reps × ${sizes.runs}, interleaved, rotating; timed by bench/outside.py through grpcio), medians (min–max):`,
    `  runner in the container:             ${range(r.container)} ms`,
    `  runner in the container, no seccomp: ${range(r.unconfined)} ms`,
    `  runner on the host (baseline):       ${range(r.host)} ms`,
    `  container/host ${ratio(r.ratio)}×; without seccomp/host ${ratio(r.unconfinedRatio)}×`,
    `docker stop → runner exited ${results.exitCode}: ${results.stopMs.toFixed(0)} ms; mounts left under the worker directory: ${results.mountsLeftUnderWorker}`,
  ];
  console.log(lines.join('\n'));
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ sizes, results }, null, 2));
}

main().catch((error) => {
  console.error(`bench/image: ${error.message}`);
  process.exit(1);
});
