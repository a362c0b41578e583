// What hooks/mountat-hook (native/hook-launcher.c) and the hook server say to each other over
// the server's SOCK_SEQPACKET socket: one request, one answer, each one message.
//
// request:  "MHK1", u32 argc, argc NUL-terminated arguments (the hook's argv without argv[0]
//           and without --hook-socket), then the container state (the rest of the message);
//           attached (SCM_RIGHTS): the launcher's mount, network and PID namespaces, and the fd
//           of --root-fd where it was given.
// answer:   "R" + a reason: refused, the launcher runs the hook itself (node) as without a server;
//           "D" + u8 exit status + u32 stdout length + stdout + stderr: what the hook printed.
// Integers little-endian (the launcher writes its own byte order: both ends are one machine).
// Pure: no system calls.

export const REQUEST_MAGIC = 'MHK1';
/** Upper bound of a request: argv and the state (runtimes' states are a few kB). */
export const MAX_REQUEST_BYTES = 256 << 10;
/** What an answer carries of each output at most: a SOCK_SEQPACKET message must fit the socket's buffer. */
export const MAX_OUTPUT_BYTES = 32 << 10;
/** Namespaces (mount, network, PID) and the root fd. */
export const MAX_REQUEST_FDS = 4;

export interface HookRequest {
  argv: string[];
  state: string;
}

/** Decode a request's bytes; a one-line reason when they are not one. */
export function decodeRequest(payload: Buffer): HookRequest | string {
  if (payload.length < 8 || payload.toString('latin1', 0, 4) !== REQUEST_MAGIC) return 'not a mountat-hook request';
  const argc = payload.readUInt32LE(4);
  if (argc > 64) return `too many arguments (${argc})`;
  const argv: string[] = [];
  let offset = 8;
  for (let i = 0; i < argc; i++) {
    const end = payload.indexOf(0, offset);
    if (end < 0) return 'argument list cut short';
    argv.push(payload.toString('utf8', offset, end));
    offset = end + 1;
  }
  return { argv, state: payload.toString('utf8', offset) };
}

/** Encode a request (what the launcher sends; tests use it to play the launcher). */
export function encodeRequest(request: HookRequest): Buffer {
  const header = Buffer.alloc(8);
  header.write(REQUEST_MAGIC, 0, 'latin1');
  header.writeUInt32LE(request.argv.length, 4);
  return Buffer.concat([header, ...request.argv.map((arg) => Buffer.from(`${arg}\0`)), Buffer.from(request.state)]);
}

export function encodeRefusal(reason: string): Buffer {
  return Buffer.from(`R${reason}`);
}

/** The last `max` bytes of `text` (its last lines are the ones that say why). */
function tail(text: string, max: number): Buffer {
  const bytes = Buffer.from(text);
  return bytes.length <= max ? bytes : bytes.subarray(bytes.length - max);
}

export function encodeDone(exitCode: number, stdout: string, stderr: string): Buffer {
  const out = tail(stdout, MAX_OUTPUT_BYTES);
  const header = Buffer.alloc(6);
  header.write('D', 0, 'latin1');
  header.writeUInt8(exitCode & 0xff, 1);
  header.writeUInt32LE(out.length, 2);
  return Buffer.concat([header, out, tail(stderr, MAX_OUTPUT_BYTES)]);
}

export type HookAnswer = { refused: string } | { exitCode: number; stdout: string; stderr: string };

/** Decode an answer (tests play the launcher with it). */
export function decodeAnswer(payload: Buffer): HookAnswer | undefined {
  if (payload.length >= 1 && payload[0] === 0x52) return { refused: payload.toString('utf8', 1) };
  if (payload.length < 6 || payload[0] !== 0x44) return undefined;
  const length = payload.readUInt32LE(2);
  if (6 + length > payload.length) return undefined;
  return { exitCode: payload[1]!, stdout: payload.toString('utf8', 6, 6 + length), stderr: payload.toString('utf8', 6 + length) };
}
