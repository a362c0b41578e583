// One thread of the hook server (hook-server.ts): accepts a connection, checks the peer
// (hook-peer.ts), moves itself into the launcher's mount and network namespaces, runs the hook
// there exactly as the hook's own process would (runHook), moves back to the host's, answers.
//
// Why a thread can do this: setns(CLONE_NEWNS) needs a task whose root and cwd are its own, and
// unshare(CLONE_FS) gives this thread its own (namespaces.ts); network namespaces are per thread.
// Everything a request does is synchronous on this thread (koffi calls, node:fs *Sync): an
// asynchronous fs call would run on libuv's pool, whose threads stay in the host's namespaces.
import { parentPort, workerData } from 'node:worker_threads';
import { messageOf } from '../base/index.js';
import {
  acceptConnection,
  BorrowedFd,
  CLONE_NEWNET,
  CLONE_NEWNS,
  constants as C,
  isErrno,
  openat2,
  openOwnNamespace,
  openPidNamespace,
  probeProcPidns,
  receiveWithFds,
  sendMessage,
  setns,
  setReceiveTimeout,
  setThreadUmask,
  unshareThreadFilesystem,
  type Fd,
  type FdRef,
} from '../linux/index.js';
import { runHook, stageOf, type HookOutcome } from './hook-main.js';
import { checkPeer, sameNamespace, type Peer } from './hook-peer.js';
import { decodeRequest, encodeDone, encodeRefusal, MAX_REQUEST_BYTES, MAX_REQUEST_FDS } from './hook-protocol.js';
import type { StageResult } from './stages.js';

interface WorkerData {
  listener: number;
  /** How long a connected peer may take to send its request. */
  receiveTimeoutMs: number;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- set by hook-server.ts, which starts this thread
const data = workerData as WorkerData;
const log = (line: string) => parentPort?.postMessage({ log: line });

unshareThreadFilesystem();
// Made from this thread, a proc shows the container's processes only through proc's pidns
// option, which older kernels lack: there every stage that mounts is left to the hook's own process.
const procPidnsOption = probeProcPidns() === true;
const host = { mnt: openOwnNamespace('mnt'), net: openOwnNamespace('net'), pid: openOwnNamespace('pid') };

/** This thread could not return to the host's namespaces: it must serve nothing more. */
class StrandedError extends Error {
  constructor(cause: unknown) {
    super(`cannot return to the host's namespaces: ${messageOf(cause)}`, { cause });
  }
}

function openNamespaceOf(pid: number, kind: 'mnt' | 'net'): Fd {
  return openat2(C.AT_FDCWD, `/proc/${pid}/ns/${kind}`, { flags: C.O_RDONLY | C.O_CLOEXEC, resolve: 0 });
}

/** prestart/createRuntime: what nsenter --mount --pid --net does for the hook's own process, on this thread. */
function enterNamespacesOf(pid: number, work: (pidns: FdRef) => StageResult): StageResult {
  using mnt = openNamespaceOf(pid, 'mnt');
  using net = openNamespaceOf(pid, 'net');
  using pidns = openPidNamespace(pid);
  setns(mnt, CLONE_NEWNS, `the mount namespace of pid ${pid}`);
  setns(net, CLONE_NEWNET, `the network namespace of pid ${pid}`);
  // The caller moves the thread back to the host's namespaces, whatever happens here.
  return work(pidns);
}

/** Whether the hook was given --root-fd: the launcher then attached that fd (if it was open). */
const namesRootFd = (argv: string[]) => argv.some((arg) => arg === '--root-fd' || arg.startsWith('--root-fd='));

async function runIn(
  peer: Peer,
  namespaces: { mnt: FdRef; net: FdRef; pid: FdRef },
  rootFd: FdRef | undefined,
  argv: string[],
  state: string,
): Promise<HookOutcome> {
  const umask = setThreadUmask(peer.umask);
  try {
    try {
      setns(namespaces.mnt, CLONE_NEWNS, "the hook's mount namespace");
      setns(namespaces.net, CLONE_NEWNET, "the hook's network namespace");
    } catch (error) {
      return { exitCode: 1, stdout: '', stderr: `mountat-hook: the hook server cannot enter the hook's namespaces: ${messageOf(error)}\n` };
    }
    return await runHook(argv, () => state, {
      // The launcher gives node a clean environment: no $MOUNTAT_STATE_DIR reaches the hook either way.
      stateDirVariable: undefined,
      enterNamespacesOf,
      procPidns: sameNamespace(namespaces.pid, host.pid) ? undefined : namespaces.pid,
      rootFd: rootFd?.fd,
    });
  } finally {
    // Not back in the host's namespaces, this thread would serve the next request from the last
    // container's: fatal (the throw ends the thread, and hook-server.ts the process).
    try {
      setThreadUmask(umask);
      setns(host.mnt, CLONE_NEWNS, "the host's mount namespace");
      setns(host.net, CLONE_NEWNET, "the host's network namespace");
    } catch (error) {
      // eslint-disable-next-line no-unsafe-finally -- on purpose: this failure outweighs the request's outcome
      throw new StrandedError(error);
    }
  }
}

async function serve(connection: Fd): Promise<void> {
  setReceiveTimeout(connection, data.receiveTimeoutMs);
  // Read before anything is answered: a socket closed with a request unread resets the
  // connection, and the launcher would see ECONNRESET instead of the refusal.
  const received = receiveWithFds(connection, MAX_REQUEST_BYTES, MAX_REQUEST_FDS);
  try {
    const peer = checkPeer(connection);
    if ('refused' in peer) {
      log(`refused a peer: ${peer.refused}`);
      sendMessage(connection, encodeRefusal(peer.refused));
      return;
    }
    const request = received.truncated ? 'the request did not fit' : decodeRequest(received.payload);
    const [mnt, net, pid, rootFd] = received.fds;
    // Anything malformed is refused, not failed: the launcher then runs the hook itself (and node
    // reports a --root-fd that names no open fd, which the launcher could not attach).
    let why: string | undefined;
    if (typeof request === 'string') why = request;
    else if (!mnt || !net || !pid) why = 'the namespaces were not attached';
    else if (namesRootFd(request.argv) && !rootFd) why = '--root-fd given but no fd attached';
    else if (!procPidnsOption && stageOf(request.argv) !== 'poststop') why = "this kernel's proc has no pidns option";
    if (why !== undefined || typeof request === 'string' || !mnt || !net || !pid) {
      log(`refused a request: ${why}`);
      sendMessage(connection, encodeRefusal(why ?? ''));
      return;
    }
    const outcome = await runIn(peer, { mnt, net, pid }, rootFd, request.argv, request.state);
    sendMessage(connection, encodeDone(outcome.exitCode, outcome.stdout, outcome.stderr));
  } finally {
    for (const fd of received.fds) fd.close();
  }
}

const listener = new BorrowedFd(data.listener);
parentPort?.postMessage({ ready: true });
for (;;) {
  let connection;
  try {
    connection = acceptConnection(listener);
  } catch (error) {
    // EINVAL: the listener was shut down (hook-server.ts, closing): this thread is done.
    if (isErrno(error, 'EINVAL')) break;
    throw error;
  }
  try {
    await serve(connection);
  } catch (error) {
    // A peer that went away (EPIPE) or never sent its request (EAGAIN, the timeout), or anything
    // else that failed outside the hook (which reports its own failures), costs only its connection.
    if (error instanceof StrandedError) throw error;
    log(`a connection ended early: ${messageOf(error)}`);
  } finally {
    connection.close();
  }
}
