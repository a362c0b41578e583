// Starting a program with posix_spawn(3) instead of Node's child_process. libuv forks the whole
// Node process (page tables of 70+ MB copied for every action: about 4 ms here); glibc's
// posix_spawn uses clone(CLONE_VM|CLONE_VFORK), so the cost no longer grows with the runner's
// size. The child is unknown to libuv: its caller reaps it with waitpid.
import { koffi, lib, libc } from './libc.js';
import { SyscallError } from './syscall-error.js';

// Declared on first use: linux/index.ts re-exports this file, and the OCI hook, which never
// spawns, should not pay for seven koffi declarations on every start.
function declare() {
  return {
    fileActionsInit: lib().func('int posix_spawn_file_actions_init(void *actions)') as (actions: Buffer) => number,
    fileActionsDup2: lib().func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)') as (
      actions: Buffer,
      fd: number,
      newfd: number,
    ) => number,
    fileActionsDestroy: lib().func('int posix_spawn_file_actions_destroy(void *actions)') as (actions: Buffer) => number,
    posixSpawnRaw: lib().func('int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)') as (
      pid: number[],
      path: string,
      actions: Buffer,
      attr: null,
      argv: Array<string | null>,
      envp: Array<string | null>,
    ) => number,
    pipe2Raw: lib().func('int pipe2(_Out_ int *fds, int flags)') as (fds: Int32Array, flags: number) => number,
    waitpidRaw: lib().func('int waitpid(int pid, _Out_ int *status, int options)') as (pid: number, status: Int32Array, options: number) => number,
    fcntlRaw: lib().func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, ...args: unknown[]) => number,
  };
}
let declared: ReturnType<typeof declare> | undefined;
const fns = () => (declared ??= declare());

const F_DUPFD_CLOEXEC = 1030;
const WNOHANG = 1;

/** pipe2(2): [read end, write end]. */
export function pipe2(flags: number): [number, number] {
  const fds = new Int32Array(2);
  if (fns().pipe2Raw(fds, flags) < 0) throw new SyscallError('pipe2', koffi().errno());
  return [fds[0]!, fds[1]!];
}

/**
 * Start `path` with `argv` and exactly `env`, its fds set up as `fds` says (child fd → parent
 * fd); every other fd of ours is close-on-exec. Returns the pid.
 */
export function posixSpawn(path: string, argv: string[], env: Record<string, string>, fds: Record<number, number>): number {
  // Each source is first copied above every target, so that setting up fd 3 cannot clobber the
  // source of fd 4; the copies are close-on-exec, the dup2 in the child clears that on targets.
  const copies: number[] = [];
  const actions = Buffer.alloc(256); // posix_spawn_file_actions_t is 80 bytes in glibc; room to spare
  if (fns().fileActionsInit(actions) !== 0) throw new SyscallError('posix_spawn_file_actions_init', koffi().errno());
  try {
    for (const [target, source] of Object.entries(fds)) {
      const copy = fns().fcntlRaw(source, F_DUPFD_CLOEXEC, 'int', 64);
      if (copy < 0) throw new SyscallError('fcntl', koffi().errno(), { detail: `F_DUPFD_CLOEXEC of fd ${source}` });
      copies.push(copy);
      const rc = fns().fileActionsDup2(actions, copy, Number(target));
      if (rc !== 0) throw new SyscallError('posix_spawn_file_actions_adddup2', rc);
    }
    const pid = [0];
    const envp = Object.entries(env).map(([key, value]) => `${key}=${value}`);
    const rc = fns().posixSpawnRaw(pid, path, actions, null, [...argv, null], [...envp, null]);
    if (rc !== 0) throw new SyscallError('posix_spawn', rc, { path });
    return pid[0]!;
  } finally {
    fns().fileActionsDestroy(actions);
    for (const copy of copies) libc().close(copy);
  }
}

/** waitpid(pid, WNOHANG): the raw wait status once the child has exited, undefined before. */
export function reapIfExited(pid: number): number | undefined {
  const status = new Int32Array(1);
  const rc = fns().waitpidRaw(pid, status, WNOHANG);
  if (rc < 0) throw new SyscallError('waitpid', koffi().errno(), { detail: `pid ${pid}` });
  return rc === 0 ? undefined : status[0]!;
}
