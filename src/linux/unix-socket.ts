// A listening UNIX socket (SOCK_SEQPACKET: one request and one answer, each a message with its
// boundaries kept) served by blocking calls from a worker thread, with the peer's credentials
// and any fds it attached: what Node's net module cannot give (SO_PEERCRED, SCM_RIGHTS).
// Thin: no policy, no message format.
import { Fd, type FdRef } from './fd.js';
import { koffi, lib } from './libc.js';
import { AF_UNIX, messageHeader, messageOf, MSG_NOSIGNAL, rightsControl, SCM_RIGHTS, SOCK_CLOEXEC, SOCK_SEQPACKET, SOL_SOCKET } from './socket-abi.js';
import { SyscallError } from './syscall-error.js';

const SO_PEERCRED = 17;
const SO_RCVTIMEO = 20;
const SO_PEERPIDFD = 77;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_TRUNC = 0x20;
const MSG_CTRUNC = 0x8;
const EINTR = 4;
const ENOPROTOOPT = 92;
const SUN_PATH_MAX = 108;

function declare() {
  const k = koffi();
  const l = lib();
  return {
    socket: l.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
    bind: l.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
    listen: l.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number,
    accept4: l.func('int accept4(int fd, void *addr, void *len, int flags)') as (fd: number, addr: null, len: null, flags: number) => number,
    getsockopt: l.func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *len)') as (
      fd: number,
      level: number,
      name: number,
      value: Buffer,
      len: number[],
    ) => number,
    setsockopt: l.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)') as (
      fd: number,
      level: number,
      name: number,
      value: Buffer,
      len: number,
    ) => number,
    recvmsg: l.func('recvmsg', 'long', ['int', k.inout(k.pointer(messageHeader())), 'int']) as (
      fd: number,
      msg: Record<string, unknown>,
      flags: number,
    ) => number,
    shutdown: l.func('int shutdown(int fd, int how)') as (fd: number, how: number) => number,
    send: l.func('long send(int fd, const void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  };
}
let declared: ReturnType<typeof declare> | undefined;
const fns = () => (declared ??= declare());

function sockaddr(path: string): Buffer {
  const name = Buffer.from(path);
  if (name.length === 0 || name.length >= SUN_PATH_MAX || name.includes(0))
    throw new RangeError(`socket path ${JSON.stringify(path)}: 1 to ${SUN_PATH_MAX - 1} bytes, no NUL`);
  const address = Buffer.alloc(2 + SUN_PATH_MAX);
  address.writeUInt16LE(AF_UNIX, 0);
  name.copy(address, 2);
  return address;
}

/** socket + bind + listen: a SOCK_SEQPACKET socket at `path` (which must not exist), close-on-exec. */
export function listenSeqpacket(path: string, backlog: number): Fd {
  const address = sockaddr(path);
  const raw = fns().socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (raw < 0) throw new SyscallError('socket', koffi().errno());
  const fd = new Fd(raw);
  try {
    if (fns().bind(raw, address, address.length) < 0) throw new SyscallError('bind', koffi().errno(), { path });
    if (fns().listen(raw, backlog) < 0) throw new SyscallError('listen', koffi().errno(), { path });
    return fd;
  } catch (error) {
    fd.close();
    throw error;
  }
}

/** accept4(2), blocking the calling thread until a peer connects; the connection is close-on-exec. */
export function acceptConnection(listener: FdRef): Fd {
  for (;;) {
    const fd = fns().accept4(listener.fd, null, null, SOCK_CLOEXEC);
    if (fd >= 0) return new Fd(fd);
    const errno = koffi().errno();
    if (errno !== EINTR) throw new SyscallError('accept4', errno);
  }
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** SO_PEERCRED: who connected (at connect time), in the IDs of this process's namespaces. */
export function peerCredentials(socket: FdRef): PeerCredentials {
  const value = Buffer.alloc(12);
  if (fns().getsockopt(socket.fd, SOL_SOCKET, SO_PEERCRED, value, [12]) < 0) throw new SyscallError('getsockopt', koffi().errno(), { detail: 'SO_PEERCRED' });
  return { pid: value.readInt32LE(0), uid: value.readUInt32LE(4), gid: value.readUInt32LE(8) };
}

/** SO_PEERPIDFD (Linux 6.5+): a pidfd for the process that connected; undefined where the kernel lacks it. */
export function peerPidfd(socket: FdRef): Fd | undefined {
  const value = Buffer.alloc(4);
  if (fns().getsockopt(socket.fd, SOL_SOCKET, SO_PEERPIDFD, value, [4]) < 0) {
    const errno = koffi().errno();
    if (errno === ENOPROTOOPT) return undefined;
    throw new SyscallError('getsockopt', errno, { detail: 'SO_PEERPIDFD' });
  }
  return new Fd(value.readInt32LE(0));
}

/** SO_RCVTIMEO: a receive that waits longer than `ms` fails with EAGAIN. */
export function setReceiveTimeout(socket: FdRef, ms: number): void {
  const value = Buffer.alloc(16);
  value.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  value.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  if (fns().setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, value, 16) < 0) throw new SyscallError('setsockopt', koffi().errno(), { detail: 'SO_RCVTIMEO' });
}

export interface Received {
  payload: Buffer;
  fds: Fd[];
  /** The message or its fds did not fit (MSG_TRUNC, MSG_CTRUNC): what came is incomplete. */
  truncated: boolean;
}

/** recvmsg(2) of one message of at most `maxBytes`, with at most `maxFds` fds (each owned by the caller, close-on-exec). */
export function receiveWithFds(socket: FdRef, maxBytes: number, maxFds: number): Received {
  const payload = Buffer.alloc(maxBytes);
  const control = rightsControl(maxFds);
  const message = messageOf(payload, control);
  let got: number;
  for (;;) {
    got = fns().recvmsg(socket.fd, message, MSG_CMSG_CLOEXEC);
    if (got >= 0) break;
    const errno = koffi().errno();
    if (errno !== EINTR) throw new SyscallError('recvmsg', errno);
  }
  // One SCM_RIGHTS header at most (the sender attaches one); its length says how many fds came.
  const fds: Fd[] = [];
  const length = Number(control.readBigUInt64LE(0));
  if (length >= 16 && control.readInt32LE(8) === SOL_SOCKET && control.readInt32LE(12) === SCM_RIGHTS) {
    for (let offset = 16; offset + 4 <= length && offset + 4 <= control.length; offset += 4) fds.push(new Fd(control.readInt32LE(offset)));
  }
  const flags = typeof message.flags === 'number' ? message.flags : 0;
  return { payload: payload.subarray(0, got), fds, truncated: (flags & (MSG_TRUNC | MSG_CTRUNC)) !== 0 };
}

/** send(2) of one message; a peer gone comes back as EPIPE, never a signal. */
export function sendMessage(socket: FdRef, payload: Buffer): void {
  const sent = fns().send(socket.fd, payload, payload.length, MSG_NOSIGNAL);
  if (sent < 0) throw new SyscallError('send', koffi().errno());
}

/**
 * shutdown(SHUT_RDWR) of a listening socket: every thread blocked in accept4 on it wakes with
 * EINVAL (Linux), which is how the threads serving it are told to stop; closing it would not wake them.
 */
export function shutdownListener(listener: FdRef): void {
  if (fns().shutdown(listener.fd, 2) < 0) throw new SyscallError('shutdown', koffi().errno());
}
