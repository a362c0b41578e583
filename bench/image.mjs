#!/usr/bin/env node
// The runner image's benchmark: what the container costs. In one run, with a Docker engine of its
// own (scripts/docker/dockerd.sh) and the image built on locally made bases (as the tests do):
// the build, the image's size, the time from `docker run` to the first successful CheckReadiness,
// a Run of /bin/true through the runner in the container (with Docker's default seccomp filter, and
// without it) against the same Run through a runner started on the host (interleaved; the
// baseline), and `docker stop` until the runner has exited.
// Re-executes itself in a private mount namespace; stops the engine at the end.
//
// usage: node bench/image.mjs [--quick] [--json FILE]        (as root; `npm run bench:image`)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { benchOptions, enterPrivateNamespace, REPO, repRatios, run, runAction, summary } from './util.mjs';

const SIZES = { full: { runs: 20, reps: 5, warmup: 5 }, quick: { runs: 3, reps: 2, warmup: 1 } };
const IMAGE = 'mountat-runner:bench';
// What README.md#container-image documents: the runner's own (SYS_CHROOT as Docker's default seccomp
// profile refuses pivot_root), and what its root actions keep.
const CAPS = ['--cap-drop', 'ALL', ...['SYS_ADMIN', 'SETPCAP', 'SYS_CHROOT', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID'].flatMap((cap) => ['--cap-add', cap])];

const ms = (start) => Number(process.hrtime.bigint() - start) / 1e6;

async function loadClient(socket) {
  const { loadRunnerProto } = await import(join(REPO, 'dist', 'runner', 'index.js'));
  return new (loadRunnerProto().buildbarn.runner.Runner)(`unix://${socket}`, credentials.createInsecure());
}

function call(stub, method, request) {
  return new Promise((resolve, reject) => stub[method](request, { deadline: Date.now() + 10_000 }, (error, response) => (error ? reject(error) : resolve(response))));
}

/** Polls CheckReadiness every 5 ms until it answers OK; the time it took from `since`. */
async function readyAfter(socket, since) {
  for (let i = 0; i < 6000; i++) {
    if (existsSync(socket)) {
      const stub = await loadClient(socket);
      try {
        await call(stub, 'CheckReadiness', { path: '' });
        return ms(since);
      } catch {
        // not yet
      } finally {
        stub.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${socket} never became ready`);
}

async function main() {
  const { sizes, jsonFile } = benchOptions(SIZES);
  enterPrivateNamespace();

  const scratch = mkdtempSync(join(os.tmpdir(), 'mountat-bench-image-'));
  const engineDir = join(scratch, 'engine');
  const host = run(join(REPO, 'scripts', 'docker', 'dockerd.sh'), ['start', engineDir]).trim();
  const docker = (args) => run('docker', args, { env: { ...process.env, DOCKER_HOST: host }, maxBuffer: 64 << 20 });
  const results = {};
  const worker = join(scratch, 'worker');
  try {
    let start = process.hrtime.bigint();
    const bases = run(join(REPO, 'scripts', 'docker', 'make-base-rootfs.sh'), []).trim();
    results.baseRootfsMs = ms(start);
    start = process.hrtime.bigint();
    docker(['import', join(bases, 'runtime.tar'), 'mountat-base/runtime:local']);
    docker(['import', join(bases, 'build.tar'), 'mountat-base/build:local']);
    results.importMs = ms(start);
    start = process.hrtime.bigint();
    docker(['build', '--network', 'host', '--build-arg', 'BUILD_BASE=mountat-base/build:local', '--build-arg', 'RUNTIME_BASE=mountat-base/runtime:local', '-t', IMAGE, REPO]);
    results.buildMs = ms(start);
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

    start = process.hrtime.bigint();
    const id = docker(['run', '-d', ...CAPS, '-v', `${worker}:/worker:rw,rslave`, IMAGE]).trim();
    results.startToReadyMs = await readyAfter(join(worker, 'runner'), start);
    // The same image without Docker's seccomp filter, on a build directory and socket of its own:
    // how much of the difference to the host is the filter run on every system call.
    const unconfinedConfig = join(scratch, 'unconfined.json');
    writeFileSync(unconfinedConfig, JSON.stringify({ buildDirectoryPath: '/worker/unconfined-build', grpcServers: [{ listenPaths: ['/worker/unconfined-runner'] }] }));
    const unconfinedId = docker(['run', '-d', ...CAPS, '--security-opt', 'seccomp=unconfined', '-v', `${worker}:/worker:rw,rslave`, '-v', `${unconfinedConfig}:/config/runner.json:ro`, IMAGE]).trim();
    await readyAfter(join(worker, 'unconfined-runner'), process.hrtime.bigint());

    const hostConfig = join(scratch, 'host-runner.json');
    const hostSocket = join(scratch, 'host-runner.sock');
    writeFileSync(hostConfig, JSON.stringify({ buildDirectoryPath: join(worker, 'host-build'), grpcServers: [{ listenPaths: [hostSocket] }], stateDirectory: join(scratch, 'state'), logLevel: 'warn' }));
    start = process.hrtime.bigint();
    const hostRunner = spawn(join(REPO, 'bin', 'mountat.js'), ['runner', '--config', hostConfig], { stdio: ['ignore', 'inherit', 'inherit'] });
    results.hostStartToReadyMs = await readyAfter(hostSocket, start);

    const stubs = {
      container: await loadClient(join(worker, 'runner')),
      unconfined: await loadClient(join(worker, 'unconfined-runner')),
      host: await loadClient(hostSocket),
    };
    const names = Object.keys(stubs);
    for (let i = 0; i < sizes.warmup; i++) for (const name of names) await runAction(stubs[name], 'a0');
    const per = Object.fromEntries(names.map((name) => [name, []]));
    for (let r = 0; r < sizes.reps; r++) {
      const total = Object.fromEntries(names.map((name) => [name, 0]));
      for (let i = 0; i < sizes.runs; i++) {
        // Taking turns going first.
        const order = names.map((_, k) => names[(k + i) % names.length]).map((name) => [name, stubs[name]]);
        for (const [name, stub] of order) {
          const t = process.hrtime.bigint();
          await runAction(stub, 'a0');
          total[name] += ms(t);
        }
      }
      for (const key of Object.keys(per)) per[key].push(total[key] / sizes.runs);
    }
    for (const stub of Object.values(stubs)) stub.close();
    results.run = Object.fromEntries(names.map((name) => [name, summary('ms/action', per[name], sizes.runs)]));
    results.run.ratio = repRatios(results.run.container, results.run.host);
    results.run.unconfinedRatio = repRatios(results.run.unconfined, results.run.host);
    docker(['rm', '-f', unconfinedId]);

    start = process.hrtime.bigint();
    docker(['stop', '--time', '20', id]);
    results.stopMs = ms(start);
    results.exitCode = Number(docker(['inspect', '--format', '{{.State.ExitCode}}', id]).trim());
    if (results.exitCode !== 0) console.error(`bench/image: the runner exited ${results.exitCode}; its last log lines:\n${spawnSync('docker', ['logs', '--tail', '5', id], { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8' }).stdout.slice(-1500)}`);
    docker(['rm', id]);
    hostRunner.kill('SIGTERM');
    await new Promise((resolve) => hostRunner.once('exit', resolve));
    results.mountsLeftUnderWorker = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.split(' ')[4]?.startsWith(`${worker}/`)).length;
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
    `Run of /bin/true (${sizes.reps} reps × ${sizes.runs}, interleaved), medians (min–max):`,
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
