// A UNIX socket pair, and one message with fds attached (SCM_RIGHTS): what Node's net module
// cannot do with arbitrary fds. Thin: no policy, no message format (the caller builds the bytes).
import { koffi, lib } from './libc.js';
import { SyscallError } from './syscall-error.js';

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;

// Declared on first use, as spawn.ts: the OCI hook never passes fds.
function declare() {
  return {
    socketpair: lib().func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)') as (domain: number, type: number, protocol: number, fds: Int32Array) => number,
    sendmsg: lib().func('long sendmsg(int fd, void *msg, int flags)') as (fd: number, msg: Buffer, flags: number) => number,
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
  // struct iovec { void *base; size_t len; }
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(koffi().address(payload)), 0);
  iov.writeBigUInt64LE(BigInt(payload.length), 8);
  // struct cmsghdr { size_t len; int level; int type; } then the fds; CMSG_SPACE rounds to 8.
  const dataLength = 4 * fds.length;
  const control = Buffer.alloc(16 + Math.ceil(dataLength / 8) * 8);
  control.writeBigUInt64LE(BigInt(16 + dataLength), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  fds.forEach((fd, i) => control.writeInt32LE(fd, 16 + 4 * i));
  // struct msghdr { void *name; u32 namelen (+4); struct iovec *iov; size_t iovlen; void *control; size_t controllen; int flags (+4); }
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(BigInt(koffi().address(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(BigInt(koffi().address(control)), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  const sent = fns().sendmsg(socket, msg, MSG_NOSIGNAL);
  if (sent < 0) throw new SyscallError('sendmsg', koffi().errno());
  if (sent !== payload.length) throw new SyscallError('sendmsg', 0, { detail: `sent ${sent} of ${payload.length} bytes` });
}
