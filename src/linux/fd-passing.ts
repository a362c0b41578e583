// A UNIX socket pair, and one message with fds attached (SCM_RIGHTS): what Node's net module
// cannot do with arbitrary fds. Thin: no policy, no message format (the caller builds the bytes).
import { koffi, lib } from './libc.js';
import { AF_UNIX, messageHeader, messageOf, MSG_NOSIGNAL, rightsControl, SCM_RIGHTS, SOCK_CLOEXEC, SOCK_SEQPACKET, SOL_SOCKET } from './socket-abi.js';
import { SyscallError } from './syscall-error.js';

// Declared on first use, as spawn.ts: the OCI hook never passes fds.
function declare() {
  const k = koffi();
  return {
    socketpair: lib().func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)') as (
      domain: number,
      type: number,
      protocol: number,
      fds: Int32Array,
    ) => number,
    sendmsg: lib().func('sendmsg', 'long', ['int', k.pointer(messageHeader()), 'int']) as (fd: number, msg: Record<string, unknown>, flags: number) => number,
  };
}
let declared: ReturnType<typeof declare> | undefined;
const fns = () => (declared ??= declare());

/** socketpair(AF_UNIX, SOCK_SEQPACKET|SOCK_CLOEXEC): message boundaries kept, both ends close-on-exec. */
export function seqpacketPair(): [number, number] {
  const fds = new Int32Array(2);
  if (fns().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) throw new SyscallError('socketpair', koffi().errno());
  return [fds[0]!, fds[1]!];
}

/** sendmsg(2) of one message, `payload`, with `fds` attached; EPIPE comes back as an error, never a signal. */
export function sendWithFds(socket: number, payload: Buffer, fds: readonly number[]): void {
  // struct cmsghdr { size_t len; int level; int type; } then the fds.
  const control = rightsControl(fds.length);
  control.writeBigUInt64LE(BigInt(16 + 4 * fds.length), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  fds.forEach((fd, i) => control.writeInt32LE(fd, 16 + 4 * i));
  const sent = fns().sendmsg(socket, messageOf(payload, control), MSG_NOSIGNAL);
  if (sent < 0) throw new SyscallError('sendmsg', koffi().errno());
  if (sent !== payload.length) throw new SyscallError('sendmsg', 0, { detail: `sent ${sent} of ${payload.length} bytes` });
}
