// The UNIX socket ABI that fd-passing.ts (the runner's starter requests) and unix-socket.ts (the
// hook server) share: the constants and struct msghdr, declared once (koffi refuses a struct name
// twice). The structs are koffi's, so that koffi pins every buffer for the call: addresses taken
// by hand (koffi.address) of small Buffers, which V8 keeps on its heap and moves in a scavenge,
// once sent a stale iovec (found by a runner at 32 in flight with 1 MiB semi-spaces: a request
// the starter server could not read).
import { koffi } from './libc.js';

export const AF_UNIX = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const MSG_NOSIGNAL = 0x4000;

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
  return { msghdr };
}
let declared: ReturnType<typeof declare> | undefined;

/** struct msghdr (with its struct iovec), declared on first use. */
export const messageHeader = () => (declared ??= declare()).msghdr;

/** A struct msghdr of one buffer, `payload`, and a control buffer (what it sends or receives in). */
export function messageOf(payload: Buffer, control: Buffer): Record<string, unknown> & { flags: unknown } {
  return { name: null, nameLength: 0, iov: [{ base: payload, length: payload.length }], iovLength: 1, control, controlLength: control.length, flags: 0 };
}

/** The control buffer of one SCM_RIGHTS header with room for `count` fds (CMSG_SPACE rounds to 8). */
export const rightsControl = (count: number) => Buffer.alloc(16 + Math.ceil((4 * count) / 8) * 8);
