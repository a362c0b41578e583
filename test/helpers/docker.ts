// A Docker engine of the test's own (scripts/docker/dockerd.sh: data, exec root and socket under a
// scratch directory, in the test's private mount namespace), the base images made locally from
// Debian's packages (scripts/docker/make-base-rootfs.sh, cached between runs), and the runner
// image built from the repository's Dockerfile against them, by this engine's docker CLI or by a
// podman's (test/helpers/podman.ts). Nothing is pulled from a registry.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { messageOf } from '../../src/base/index.js';
import { asExpected } from './checked.js';
import { repo, scratchDir } from './roots.js';

const exec = promisify(execFile);
const BIG = { maxBuffer: 64 * 1024 * 1024 };

export const RUNTIME_BASE = 'mountat-base/runtime:local';
export const BUILD_BASE = 'mountat-base/build:local';

export interface Engine {
  dir: string;
  host: string;
  /** The docker CLI against this engine; rejects with its stderr. */
  docker: EngineCli;
  stop(): Promise<void>;
}

/** Runs a command without blocking the test worker (an image build takes a minute); rejects with its stderr's end. */
export async function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    return (await exec(command, args, { ...BIG, env })).stdout;
  } catch (error) {
    // execFile's error carries the output it had (its own properties, not in Error's type).
    const { stderr, stdout } = asExpected<{ stderr?: string; stdout?: string }>(error);
    throw new Error(`${command} ${args.join(' ')} failed: ${(stderr || stdout || messageOf(error)).trim().split('\n').slice(-15).join('\n')}`);
  }
}

export async function startEngine(): Promise<Engine> {
  const dir = scratchDir('mountat-docker-');
  const host = (await run(join(repo, 'scripts', 'docker', 'dockerd.sh'), ['start', dir])).trim();
  const env = { ...process.env, DOCKER_HOST: host };
  return {
    dir,
    host,
    docker: (args) => run('docker', args, env),
    stop: async () => void (await run(join(repo, 'scripts', 'docker', 'dockerd.sh'), ['stop', dir])),
  };
}

/** An engine's CLI (Engine.docker, Podman.podman): runs it with `args` against that engine, resolves to its stdout. */
export type EngineCli = (args: string[]) => Promise<string>;

export interface RunnerImageNames {
  image: string;
  runtimeBase: string;
  buildBase: string;
}

/**
 * Imports the locally made bases into the engine `cli` talks to (docker or podman: the same commands) and builds the
 * Dockerfile against them; returns the image's name.
 */
export async function buildRunnerImage(
  cli: EngineCli,
  names: RunnerImageNames = { image: 'mountat-runner:test', runtimeBase: RUNTIME_BASE, buildBase: BUILD_BASE },
): Promise<string> {
  const bases = (await run(join(repo, 'scripts', 'docker', 'make-base-rootfs.sh'), [])).trim();
  await cli(['import', join(bases, 'runtime.tar'), names.runtimeBase]);
  await cli(['import', join(bases, 'build.tar'), names.buildBase]);
  // --network host: npm ci in the build stage needs the registry, and nothing changes on the host's network (the
  // test's dockerd has no bridge; podman's default network, netavark, would add iptables rules on the host).
  await cli([
    'build',
    '--network',
    'host',
    '--build-arg',
    `BUILD_BASE=${names.buildBase}`,
    '--build-arg',
    `RUNTIME_BASE=${names.runtimeBase}`,
    '-t',
    names.image,
    repo,
  ]);
  return names.image;
}
