// A real `mountat runner` process on a UNIX socket (or TCP, where the config says), a build directory with busybox input roots,
// and a real gRPC client built from schemas/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { loadRunnerProto, posixResourceUsageType } from '../../src/runner/index.js';
import type { RunnerClient } from '../../src/runner/generated/buildbarn/runner/Runner.js';
import type { RunRequest, RunRequest__Output } from '../../src/runner/generated/buildbarn/runner/RunRequest.js';
import type { RunResponse__Output } from '../../src/runner/generated/buildbarn/runner/RunResponse.js';
import { mountsUnder, removeTree, repo, scratchDir } from './roots.js';

export interface RunnerProcess {
  dir: string;
  build: string;
  socket: string;
  process: ChildProcess;
  output: () => string;
  client: RunnerClient;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `wrapper`: a command line the runner is started through (setpriv, to take capabilities away).
 * `inherit`: fds of this process the runner inherits without CLOEXEC, as a careless parent might leave them: as its
 * fds 40, 41, … (Node marks the fds it starts with close-on-exec up to the first gap after 15, libuv's
 * uv_disable_stdio_inheritance: an fd below that would not show a leak).
 */
/** Where startRunner's `inherit` fds land in the runner. */
export const INHERITED_FD = 40;

export interface SpawnedRunner {
  build: string;
  socket: string;
  /** Where a client reaches it: the socket, unless the config's grpcServers leave it out (then its first address). */
  address: string;
  process: ChildProcess;
  output: () => string;
  /** Resolves to the exit code and the signal that ended it. */
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/** A `mountat runner` started on a config in `dir`, not waited for (startRunner waits for it to be ready). */
export function spawnRunner(extraConfig: object = {}, dir = scratchDir('mountat-runner-'), wrapper: string[] = [], inherit: number[] = []): SpawnedRunner {
  const build = join(dir, 'build');
  mkdirSync(build, { recursive: true });
  const socket = join(dir, 'runner.sock');
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({ buildDirectoryPath: build, grpcServers: [{ listenPaths: [socket] }], stateDirectory: join(dir, 'state'), ...extraConfig }),
  );
  const servers = (extraConfig as { grpcServers?: Array<{ listenPaths?: string[]; listenAddresses?: string[] }> }).grpcServers;
  const first = servers?.flatMap((server) => server.listenAddresses ?? [])[0];
  const address = !servers || servers.some((server) => server.listenPaths?.includes(socket)) || !first ? `unix://${socket}` : first.replace(/^:/, 'localhost:');
  const command = [...wrapper, join(repo, 'bin', 'mountat.js'), 'runner', '--config', config];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe', ...(inherit.length > 0 ? [...Array<'ignore'>(INHERITED_FD - 3).fill('ignore'), ...inherit] : [])],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  return { build, socket, address, process: child, output: () => output, exited };
}

export async function startRunner(
  extraConfig: object = {},
  dir = scratchDir('mountat-runner-'),
  wrapper: string[] = [],
  inherit: number[] = [],
): Promise<RunnerProcess> {
  const { build, socket, address, process: child, output, exited: ended } = spawnRunner(extraConfig, dir, wrapper, inherit);
  const exited = ended.then(([code]) => code);
  for (let i = 0; i < 200 && !output().includes('"runner ready"'); i++) {
    if (child.exitCode !== null) throw new Error(`runner exited: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  if (address.startsWith('unix://') && !existsSync(socket)) throw new Error(`runner did not start: ${output()}`);
  const proto = loadRunnerProto();
  const client = new proto.buildbarn.runner.Runner(address, credentials.createInsecure());
  return {
    dir,
    build,
    socket,
    process: child,
    output,
    client,
    async stop(signal = 'SIGTERM') {
      client.close();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** An action directory as bb_worker lays it out: <id>/root (busybox) and <id>/tmp. */
export function makeAction(build: string, id: string): void {
  execFileSync(join(repo, 'scripts', 'make-busybox-root.sh'), [join(build, id, 'root')]);
  mkdirSync(join(build, id, 'tmp'));
}

/** Every field set, as the server receives a request (runAction takes it directly). */
export function requestFor(id: string, script: string, extra: Partial<RunRequest__Output> = {}): RunRequest__Output {
  return {
    arguments: ['sh', '-c', script],
    environmentVariables: { PATH: '/bin:/usr/bin' },
    workingDirectory: '',
    stdoutPath: `${id}/stdout`,
    stderrPath: `${id}/stderr`,
    inputRootDirectory: `${id}/root`,
    temporaryDirectory: `${id}/tmp`,
    serverLogsDirectory: `${id}/server_logs`,
    ...extra,
  };
}

export function run(client: RunnerClient, request: RunRequest): Promise<RunResponse__Output> {
  return new Promise((resolve, reject) =>
    client.Run(request, (error: ServiceError | null, response?: RunResponse__Output) => (error ? reject(error) : resolve(response!))),
  );
}

export function checkReadiness(client: RunnerClient, path: string): Promise<void> {
  return new Promise((resolve, reject) => client.CheckReadiness({ path }, (error: ServiceError | null) => (error ? reject(error) : resolve())));
}

export function resourceUsage(response: RunResponse__Output): Record<string, unknown> {
  const [any] = response.resourceUsage;
  if (!any) throw new Error('no resource usage');
  if (any.type_url !== 'type.googleapis.com/buildbarn.resourceusage.POSIXResourceUsage') throw new Error(`unexpected type ${any.type_url}`);
  return posixResourceUsageType().decode(any.value).toJSON();
}

/** A TCP port nothing listens on just now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') return reject(new Error(`not a TCP address: ${String(address)}`));
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * Run ARGV in src/ of a root that has the host's /usr and /etc, read-only (a full userland: gcc,
 * java, node), on a runner of its own with CONFIG; OWN makes a directory the action's (for
 * runCommandsAs), FILES go into src/ first. Nothing may be left mounted after the Run.
 */
export async function runInFullUserland(options: {
  config: object;
  own: (dir: string) => void;
  arguments: string[];
  files?: Record<string, string>;
}): Promise<{ exitCode: string; stdout: string; stderr: string }> {
  const own = await startRunner({
    ...options.config,
    mounts: [
      { target: 'proc', kind: 'proc' },
      { target: 'sys', kind: 'sysfs' },
      { target: 'usr', kind: 'bind', source: '/usr', attributes: { readOnly: true } },
      { target: 'etc', kind: 'bind', source: '/etc', attributes: { readOnly: true } },
    ],
  });
  try {
    const root = join(own.build, 'full', 'root');
    mkdirSync(join(root, 'src'), { recursive: true });
    mkdirSync(join(own.build, 'full', 'tmp'));
    options.own(join(root, 'src'));
    options.own(join(own.build, 'full', 'tmp'));
    for (const name of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${name}`, join(root, name));
    for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(root, 'src', name), text);
    const response = await run(
      own.client,
      requestFor('full', '', { arguments: options.arguments, environmentVariables: { PATH: '/usr/bin:/bin' }, workingDirectory: 'src' }),
    );
    if (mountsUnder(own.build).length > 0) throw new Error(`left mounted after a Run: ${mountsUnder(own.build).join(', ')}`);
    return {
      exitCode: response.exitCode,
      stdout: readFileSync(join(own.build, 'full', 'stdout'), 'utf8'),
      stderr: readFileSync(join(own.build, 'full', 'stderr'), 'utf8'),
    };
  } finally {
    await own.stop();
    removeTree(own.dir);
  }
}
