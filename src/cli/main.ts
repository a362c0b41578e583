// The `mountat` command: parse the verb and its flags, run it, and turn any error into one
// line on stderr and the exit code of its kind (src/base/errors.ts: 2 for a usage mistake).
import { parseArgs } from 'node:util';
import { messageOf, reportOf } from '../base/index.js';
import { stateDirectoryFrom } from '../mounts/index.js';
import { doctorCommand } from './doctor.js';
import { execCommand } from './exec.js';
import { mountCommand } from './mount.js';
import { umountCommand } from './umount.js';
import { UsageError } from './usage-error.js';

const USAGE = `usage: mountat <verb> [options]

  doctor [--dir DIR]                      can this host mount? (syscalls, capabilities, /proc, propagation of DIR)
  mount  --root DIR [--plan FILE]         mount the plan beneath DIR and record it
  umount --root DIR                       unmount what was recorded for DIR (a no-op if nothing is)
  exec   --root DIR [--plan FILE] [--cwd D] [--network host|none] [--capabilities LIST]
         [--allow-user-namespaces] [--allow-syscall NAME]... [--pids N|none] [--memory BYTES] [--cpus N]
         [--cpu-weight W] [--oom-score-adj N] [--nice N] [--cgroup-parent CGROUP] -- CMD [ARGS...]
                                          mount, run CMD contained in DIR (its own namespaces, pivot_root, reduced
                                          capabilities, NO_NEW_PRIVS, a seccomp filter, a cgroup of its own), always
                                          unmount; exits with CMD's status
  runner --config FILE [--check]          serve Buildbarn's runner protocol (bb_worker's runner), mounting for each action;
                                          --check: only check FILE as start-up would (its fields, where it listens), and exit
  hook-server [--socket PATH] [--workers N]
                                          serve mountat-hook's stages on a UNIX socket (default /run/mountat/hook.sock;
                                          N requests at once, default 4), so that a container start runs no Node process
  probe  (--socket PATH | --config FILE) [--path P] [--timeout SECONDS]
                                          ask a running runner's CheckReadiness (for HEALTHCHECK and readiness probes)

  --plan FILE       a JSON mount plan (schemas/mount-plan.schema.json); default: proc, sys (read-only), tmp (tmpfs)
  --state-dir DIR   where records of mounts are kept (default /run/mountat, or $MOUNTAT_STATE_DIR)
  --network         exec: host (default) or none (a network namespace with only loopback)
  --capabilities    exec: comma list of what the command keeps as root (default CHOWN, DAC_OVERRIDE, FOWNER,
                    FSETID, KILL, SETGID, SETUID, SETPCAP); "" for none
  --allow-user-namespaces
                    exec: let the command make user namespaces (its seccomp filter refuses them otherwise)
  --allow-syscall NAME
                    exec: allow back a system call the seccomp filter refuses (repeatable; docs/containment.md)
  --pids N|none     exec: processes and threads the command may have at once (default 4096; docs/cgroups.md)
  --memory BYTES    exec: memory of the whole command (K, M, G suffixes), no swap beyond it; past it, all is killed
  --cpus N          exec: CPU quota in CPUs (1.5: 150 ms every 100 ms)
  --cpu-weight W    exec: CPU weight, 1-10000 (the kernel's default 100)
  --oom-score-adj N exec: the command's oom_score_adj (default 1000: killed first when memory runs out)
  --nice N          exec: the command's nice value, 0-19, which it cannot go below (default 10)
  --cgroup-parent CGROUP
                    exec: the cgroup below which the command's is made (default this process's own)
  A limit given that cannot be enforced is an error; without a cgroup filesystem the command runs unbounded.`;

const print = (line: string) => process.stdout.write(`${line}\n`);
const printErr = (line: string) => process.stderr.write(`${line}\n`);

type Flags = Record<string, string | boolean | string[] | undefined>;

/** Where records are kept, decided here once: the verbs below get it as an argument. */
const stateDirectory = (flag: string | undefined) => stateDirectoryFrom(flag, process.env.MOUNTAT_STATE_DIR);

/** What a verb takes besides its string options: switches, and string options that may be repeated. */
interface MoreFlags {
  switches?: string[];
  repeated?: string[];
}

/** Parse a verb's flags (string options, `more`, and --help); any mistake is a UsageError. */
function parse(
  argv: string[],
  names: string[],
  more: MoreFlags = {},
): { values: Flags; text: (name: string) => string | undefined; list: (name: string) => string[] } {
  const options = {
    ...Object.fromEntries(names.map((name) => [name, { type: 'string' as const }])),
    ...Object.fromEntries((more.switches ?? []).map((name) => [name, { type: 'boolean' as const }])),
    ...Object.fromEntries((more.repeated ?? []).map((name) => [name, { type: 'string' as const, multiple: true }])),
  };
  let values: Flags;
  try {
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true }).values;
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
  return {
    values,
    text: (name) => (typeof values[name] === 'string' ? values[name] : undefined),
    list: (name) => {
      const value = values[name];
      return Array.isArray(value) ? value : [];
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'doctor': {
        const { values, text } = parse(rest, ['dir']);
        if (values.help) return (print(USAGE), 0);
        return doctorCommand({ dir: text('dir') }, print);
      }
      case 'mount': {
        const { values, text } = parse(rest, ['root', 'plan', 'state-dir']);
        if (values.help) return (print(USAGE), 0);
        return mountCommand({ root: text('root'), plan: text('plan'), stateDir: stateDirectory(text('state-dir')) }, print);
      }
      case 'umount': {
        const { values, text } = parse(rest, ['root', 'state-dir']);
        if (values.help) return (print(USAGE), 0);
        return umountCommand({ root: text('root'), stateDir: stateDirectory(text('state-dir')) }, print);
      }
      case 'exec': {
        const dash = rest.indexOf('--');
        const flags = dash === -1 ? rest : rest.slice(0, dash);
        const command = dash === -1 ? [] : rest.slice(dash + 1);
        const { values, text, list } = parse(
          flags,
          ['root', 'plan', 'cwd', 'state-dir', 'network', 'capabilities', 'pids', 'memory', 'cpus', 'cpu-weight', 'oom-score-adj', 'nice', 'cgroup-parent'],
          {
            switches: ['allow-user-namespaces'],
            repeated: ['allow-syscall'],
          },
        );
        if (values.help) return (print(USAGE), 0);
        const args = {
          root: text('root'),
          plan: text('plan'),
          cwd: text('cwd'),
          stateDir: stateDirectory(text('state-dir')),
          network: text('network'),
          capabilities: text('capabilities'),
          allowUserNamespaces: values['allow-user-namespaces'] === true,
          allowSyscalls: list('allow-syscall'),
          pids: text('pids'),
          memory: text('memory'),
          cpus: text('cpus'),
          cpuWeight: text('cpu-weight'),
          oomScoreAdj: text('oom-score-adj'),
          nice: text('nice'),
          cgroupParent: text('cgroup-parent'),
          command,
        };
        return await execCommand(args, print, printErr);
      }
      case 'runner': {
        const { values, text } = parse(rest, ['config'], { switches: ['check'] });
        if (values.help) return (print(USAGE), 0);
        // Loaded only for this verb: gRPC and pino would slow every other one's start.
        const { runnerCommand } = await import('./runner.js');
        return await runnerCommand({ config: text('config'), check: values.check === true }, print);
      }
      case 'hook-server': {
        const { values, text } = parse(rest, ['socket', 'workers']);
        if (values.help) return (print(USAGE), 0);
        const { hookServerCommand } = await import('./hook-server.js');
        return await hookServerCommand({ socket: text('socket'), workers: text('workers') }, print, printErr);
      }
      case 'probe': {
        const { values, text } = parse(rest, ['socket', 'config', 'path', 'timeout']);
        if (values.help) return (print(USAGE), 0);
        const { probeCommand } = await import('./probe.js');
        return await probeCommand({ socket: text('socket'), config: text('config'), path: text('path'), timeout: text('timeout') }, print);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        print(USAGE);
        return verb === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown verb ${JSON.stringify(verb)} (doctor, mount, umount, exec, runner, hook-server, probe)`);
    }
  } catch (error) {
    const { kind, exitCode, line } = reportOf(error);
    printErr(`mountat: ${line}`);
    if (kind === 'usage') printErr('run `mountat help` for usage');
    return exitCode;
  }
}
