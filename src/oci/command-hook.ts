// Running an OCI hook entry ({ path, args, env, timeout }) as a runtime does: state on stdin,
// args[0] as argv[0], exactly the entry's env (never ours), SIGKILL on timeout. Used where
// mountat itself is the caller (the Buildbarn runner).
//
// Two runtime behaviours avoided on purpose: runc waits for orphans that still hold the hook's
// stdout after a timeout (we kill the hook's whole process group and stop waiting on pipes once
// the hook itself has exited); crun hides hook output (we put the last stderr line in the error).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { HookError } from './errors.js';
import type { OciState } from './state.js';
import type { Stage } from './stages.js';

export interface HookEntry {
  path: string;
  args?: string[] | undefined;
  env?: string[] | undefined;
  /** Seconds. */
  timeout?: number | undefined;
}

/** A hook is one method. */
export interface Hook {
  readonly description: string;
  run(state: OciState): Promise<string>;
}

export interface CommandHookOptions {
  /** Open fds handed to the hook as fd 3, 4, …, and named to it in MOUNTAT_FD_<NAME> variables. */
  fds?: Array<{ name: string; fd: number }>;
}

const OUTPUT_LIMIT = 64 * 1024;
/** After the hook exits, how long to wait for its pipes to close before giving up on orphans. */
const PIPE_GRACE_MS = 100;

function envFromList(list: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const item of list) {
    const equals = item.indexOf('=');
    if (equals > 0) env[item.slice(0, equals)] = item.slice(equals + 1);
  }
  return env;
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** The child's stdin, stdout and stderr, spawned as 'pipe' (node makes them even when the spawn itself fails). */
function pipesOf(child: ChildProcess): { stdin: Writable; stdout: Readable; stderr: Readable } {
  const { stdin, stdout, stderr } = child;
  if (!stdin || !stdout || !stderr) throw new HookError('a hook was spawned without its stdin, stdout and stderr pipes', 'internal');
  return { stdin, stdout, stderr };
}

export class CommandHook implements Hook {
  readonly description: string;

  constructor(
    readonly entry: HookEntry,
    readonly stage: Stage,
    readonly index: number,
    readonly options: CommandHookOptions = {},
  ) {
    if (!entry.path.startsWith('/')) throw new HookError(`${stage} hook #${index}: path ${JSON.stringify(entry.path)} must be absolute`);
    this.description = `${stage} hook #${index} (${entry.path})`;
  }

  run(state: OciState): Promise<string> {
    const { entry } = this;
    return new Promise((resolve, reject) => {
      const fds = this.options.fds ?? [];
      const env = envFromList(entry.env ?? []);
      fds.forEach(({ name }, i) => (env[`MOUNTAT_FD_${name.toUpperCase()}`] = String(3 + i)));
      const child = spawn(entry.path, entry.args?.slice(1) ?? [], {
        argv0: entry.args?.[0] ?? entry.path,
        env,
        stdio: ['pipe', 'pipe', 'pipe', ...fds.map(({ fd }) => fd)],
        detached: true, // its own process group, so a timeout kills whatever it started too
      });
      const pipes = pipesOf(child);
      let stdout = '';
      let stderr = '';
      pipes.stdout.on('data', (chunk: Buffer) => {
        if (stdout.length < OUTPUT_LIMIT) stdout += chunk.toString('utf8');
      });
      pipes.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < OUTPUT_LIMIT) stderr += chunk.toString('utf8');
      });
      pipes.stdin.on('error', () => {}); // a hook that does not read its stdin is not an error
      pipes.stdin.end(JSON.stringify(state));

      let timedOut = false;
      const timer =
        entry.timeout === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              try {
                process.kill(-child.pid!, 'SIGKILL');
              } catch {
                child.kill('SIGKILL');
              }
            }, entry.timeout * 1000);

      let settled = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        pipes.stdout.destroy();
        pipes.stderr.destroy();
        const output = lastLine(stderr) || lastLine(stdout);
        // A hook that fails is a setup that failed (precondition); its own reason is only its last line.
        if (timedOut)
          reject(new HookError(`${this.description} timed out after ${entry.timeout}s and was killed${output ? `: ${output}` : ''}`, 'precondition'));
        else if (code !== 0)
          reject(
            new HookError(
              `${this.description} ${code === null ? `was killed by ${signal}` : `exited with status ${code}`}${output ? `: ${output}` : ''}`,
              'precondition',
            ),
          );
        else resolve(stdout.trim());
      };
      child.once('error', (error) => {
        if (timer) clearTimeout(timer);
        reject(new HookError(`${this.description} cannot start: ${error.message}`, 'precondition', { cause: error }));
      });
      child.once('exit', (code, signal) => {
        // Give the pipes a moment to drain, but do not wait for orphans that keep them open.
        const grace = setTimeout(() => finish(code, signal), PIPE_GRACE_MS);
        child.once('close', () => {
          clearTimeout(grace);
          finish(code, signal);
        });
      });
    });
  }
}
