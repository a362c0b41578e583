// `mountat exec --root DIR [--plan FILE] [--cwd D] -- CMD ARGS…`: mount, run the command
// chrooted into the root, and always unmount: after it exits, fails to start, or we are
// signalled. Node cannot chroot a child, so util-linux's `unshare --root` does it through
// the root fd handed down as fd 3; no path string of the root is ever used beneath it.
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { attach, detach, DetachError, RecordStore, rootKey } from '../mounts/index.js';
import { loadPlan, openRoot } from './inputs.js';
import { describeReport } from './umount.js';
import { UsageError } from './usage-error.js';

export interface ExecArgs {
  root: string | undefined;
  plan: string | undefined;
  cwd: string | undefined;
  stateDir: string | undefined;
  command: string[];
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

function runChrooted(rootFd: number, cwd: string, command: string[], stop: { signal?: NodeJS.Signals }): Promise<ChildEnd> {
  return new Promise((resolve) => {
    const child = spawn('unshare', [`--root=/proc/self/fd/3`, `--wd=${cwd}`, '--', ...command], {
      stdio: ['inherit', 'inherit', 'inherit', rootFd],
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const signal of FORWARDED) process.on(signal, forward);
    if (stop.signal) child.kill(stop.signal);
    let settled = false;
    const finish = (end: ChildEnd) => {
      if (settled) return;
      settled = true;
      for (const signal of FORWARDED) process.off(signal, forward);
      resolve(end);
    };
    child.on('error', (error) => finish({ code: null, signal: null, error }));
    child.on('exit', (code, signal) => finish({ code, signal }));
  });
}

export async function execCommand(args: ExecArgs, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (args.command.length === 0) throw new UsageError('exec needs a command after --');
  const cwd = args.cwd ?? '/';
  if (!cwd.startsWith('/')) throw new UsageError(`--cwd ${cwd}: give it as an absolute path inside the root`);
  const plan = loadPlan(args.plan);
  using root = openRoot(args.root);
  const store = new RecordStore(args.stateDir);

  // A signal that arrives while mounting must not kill us between attach and detach.
  const stop: { signal?: NodeJS.Signals } = {};
  const remember = (signal: NodeJS.Signals) => {
    stop.signal ??= signal;
  };
  for (const signal of FORWARDED) process.on(signal, remember);
  try {
    const attachment = attach(root, plan);
    const key = rootKey(attachment.root);
    let end: ChildEnd;
    let tornDown = false;
    try {
      // The record lets `mountat umount` clean up should this process be SIGKILLed.
      store.save(key, attachment);
      end = await runChrooted(root.fd, cwd, args.command, stop);
    } finally {
      try {
        detach(root, attachment);
        store.remove(key);
        tornDown = true;
      } catch (error) {
        err(`mountat: teardown failed, record kept in ${store.pathFor(key)}: ${(error as Error).message}`);
        if (error instanceof DetachError) describeReport(error.report, out);
      }
    }
    if (end.error) throw new Error(`cannot start unshare (util-linux) to chroot: ${end.error.message}`);
    const status = end.code ?? 128 + (end.signal ? osConstants.signals[end.signal] : 0);
    // A command that succeeded over a failed teardown still fails: mounts were left behind.
    return status === 0 && !tornDown ? 1 : status;
  } finally {
    for (const signal of FORWARDED) process.off(signal, remember);
  }
}
