// `mountat probe`: ask a running runner's CheckReadiness over its socket, for a container's
// HEALTHCHECK or a Kubernetes readiness probe. Exit 0 when it answers OK, 1 with one line otherwise.
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { messageOf, MountatError } from '../base/index.js';
// config.js and protos.js only, not runner/index.js: a health check runs every few seconds and
// needs neither the server nor the action machinery.
import { loadSettings } from '../runner/config.js';
import { loadRunnerProto } from '../runner/protos.js';
import type { RunnerClient } from '../runner/generated/buildbarn/runner/Runner.js';
import { UsageError } from './usage-error.js';

export interface ProbeArgs {
  socket: string | undefined;
  config: string | undefined;
  path: string | undefined;
  timeout: string | undefined;
}

/** The address to probe: the socket given, or the config's first listen path (else address). */
function addressOf(args: ProbeArgs): string {
  if (args.socket !== undefined && args.config !== undefined) throw new UsageError('give --socket or --config, not both');
  if (args.socket !== undefined) {
    if (args.socket === '') throw new UsageError('--socket is empty');
    return `unix://${args.socket}`;
  }
  if (args.config === undefined) throw new UsageError('--socket PATH or --config FILE is required');
  const settings = loadSettings(args.config);
  const [path] = settings.listenPaths;
  if (path !== undefined) return `unix://${path}`;
  return settings.listenAddresses[0]!.replace(/^:/, 'localhost:');
}

function timeoutOf(text: string | undefined): number {
  if (text === undefined) return 5;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(seconds > 0)) throw new UsageError(`--timeout ${JSON.stringify(text)} is not a positive number of seconds`);
  return seconds;
}

export async function probeCommand(args: ProbeArgs, print: (line: string) => void): Promise<number> {
  const address = addressOf(args);
  const seconds = timeoutOf(args.timeout);
  const proto = loadRunnerProto();
  const client: RunnerClient = new proto.buildbarn.runner.Runner(address, credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = new Date(Date.now() + seconds * 1000);
      // An empty path asks about the build directory itself.
      client.CheckReadiness({ path: args.path ?? '' }, new Metadata(), { deadline }, (error) => (error ? reject(error) : resolve()));
    });
  } catch (error) {
    // A grpc-js ServiceError: its status code and details, where it has them.
    const code = error instanceof Error && 'code' in error && typeof error.code === 'number' ? error.code : undefined;
    const details = error instanceof Error && 'details' in error && typeof error.details === 'string' ? error.details : messageOf(error);
    const name = code !== undefined ? (status[code] ?? String(code)) : 'ERROR';
    // Not ready, or not there: a precondition of whatever waits on the probe.
    throw new MountatError('precondition', `probe ${address}: ${name}: ${details.replace(/\s+/g, ' ')}`, { cause: error });
  } finally {
    client.close();
  }
  print(`ready: ${address}`);
  return 0;
}
