// `mountat runner --config FILE`: serve Buildbarn's runner protocol until SIGTERM or SIGINT.
// With --check, only what start-up checks of the config: its fields, that no action could reach
// where it listens (src/runner/listeners.ts), and that the limits it sets can be enforced.
import { pino } from 'pino';
import { checkLimits, loadSettings, startRunner } from '../runner/index.js';
import { UsageError } from './usage-error.js';

export async function runnerCommand(args: { config: string | undefined; check: boolean }, print: (line: string) => void): Promise<number> {
  if (!args.config) throw new UsageError('--config FILE is required');
  const settings = loadSettings(args.config);
  if (args.check) {
    checkLimits(settings);
    print(`config file ${args.config}: valid`);
    return 0;
  }
  const log = pino({ level: settings.logLevel, base: { component: 'mountat-runner', pid: process.pid } });
  // The handlers come before the runner starts: a SIGTERM sent as soon as it says it is ready
  // (or while it starts) must stop it cleanly, not kill it by the signal's default action.
  let signalled: (signal: NodeJS.Signals) => void = () => {};
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  const stop = (signal: NodeJS.Signals) => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    signalled(signal);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  let runner;
  try {
    runner = await startRunner(settings, log);
  } catch (error) {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    throw error;
  }
  log.info({ signal: await stopRequested }, 'stopping');
  await runner.close();
  // Shutdown is complete. A connection whose client is frozen keeps its socket open even after it
  // was force-closed (Node ends a gracefully closed HTTP/2 session's socket only when the peer
  // does), which would keep this process alive for nothing: exit once this value is returned.
  setImmediate(() => process.exit()).unref();
  return 0;
}
