// `mountat hook-server [--socket PATH] [--workers N]`: serve mountat-hook's stages on a UNIX
// socket until SIGTERM or SIGINT (src/oci/hook-server.ts). Prints one line once it serves.
import { exitAllThreads } from '../linux/index.js';
import { DEFAULT_HOOK_SOCKET, startHookServer } from '../oci/index.js';
import { UsageError } from './usage-error.js';

/** How long requests in flight may take to finish once SIGTERM or SIGINT came. */
const STOP_GRACE_MS = 5000;

export async function hookServerCommand(
  args: { socket: string | undefined; workers: string | undefined },
  print: (line: string) => void,
  printErr: (line: string) => void,
): Promise<number> {
  const socketPath = args.socket ?? DEFAULT_HOOK_SOCKET;
  if (!socketPath.startsWith('/')) throw new UsageError(`--socket ${JSON.stringify(socketPath)}: give an absolute path`);
  const workersText = args.workers ?? '4';
  if (!/^\d{1,2}$/.test(workersText) || Number(workersText) < 1) throw new UsageError(`--workers ${JSON.stringify(workersText)}: give 1 to 64`);
  // The handlers come first: a SIGTERM sent while the server starts must stop it, not kill it.
  let signalled: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (signalled = resolve));
  process.once('SIGTERM', () => signalled());
  process.once('SIGINT', () => signalled());
  const server = await startHookServer({ socketPath, workers: Number(workersText), log: (line) => printErr(`mountat hook-server: ${line}`) });
  print(`mountat hook-server: serving ${socketPath} (${workersText} workers)`);
  // A worker that failed stops the server (rejects `stopped`): that is an exit status of 1 for its supervisor.
  await Promise.race([stopRequested, server.stopped]);
  // Requests in flight may finish, but one that hangs (a --log-file FIFO nobody reads, say) must not
  // keep a stopping server alive: its launcher then reports that the server went away.
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    server.close().then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_GRACE_MS))),
  ]);
  clearTimeout(timer);
  if (!finished) {
    printErr(`mountat hook-server: requests still running ${STOP_GRACE_MS / 1000} s after the signal; exiting without them`);
    // A worker thread blocked in a system call would keep process.exit() waiting for ever. stderr
    // is a pipe or a file here, written synchronously: the line above is out.
    return exitAllThreads(1);
  }
  await server.stopped;
  return 0;
}
