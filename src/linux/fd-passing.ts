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

// Declared on first use, as spawn.ts: the OCI hook never passes fds. The structs are koffi's, so
// that koffi pins every buffer for the call: addresses taken by hand (koffi.address) of small
// Buffers, which V8 keeps on its heap and moves in a scavenge, once sent a stale iovec (found by a
// runner at 32 in flight with 1 MiB semi-spaces: a request the starter server could not read).
function declare() {
  const k = koffi();
  const iovec = k.struct('mountat_iovec', { base: 'void *', length: 'size_t' });
  const msghdr = k.struct('mountat_msghdr', {
    name: 'void *',
    nameLength: 'uint32_t',
    iov: k.pointer(iovec),
    iovLength: 'size_t',
    control: 'void *',
    controlLength: 'size_t',
    flags: 'int',
  });
  return {
    socketpair: lib().func('int socketpair(int domain, int type, int protocol, _Out_ int *fds)') as (
      domain: number,
      type: number,
      protocol: number,
      fds: Int32Array,
    ) => number,
    sendmsg: lib().func('sendmsg', 'long', ['int', k.pointer(msghdr), 'int']) as (fd: number, msg: Record<string, unknown>, flags: number) => number,
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
  // struct cmsghdr { size_t len; int level; int type; } then the fds; CMSG_SPACE rounds to 8.
  const dataLength = 4 * fds.length;
  const control = Buffer.alloc(16 + Math.ceil(dataLength / 8) * 8);
  control.writeBigUInt64LE(BigInt(16 + dataLength), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  fds.forEach((fd, i) => control.writeInt32LE(fd, 16 + 4 * i));
  const message = {
    name: null,
    nameLength: 0,
    iov: [{ base: payload, length: payload.length }],
    iovLength: 1,
    control,
    controlLength: control.length,
    flags: 0,
  };
  const sent = fns().sendmsg(socket, message, MSG_NOSIGNAL);
  if (sent < 0) throw new SyscallError('sendmsg', koffi().errno());
  if (sent !== payload.length) throw new SyscallError('sendmsg', 0, { detail: `sent ${sent} of ${payload.length} bytes` });
}
