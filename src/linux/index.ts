export * as constants from './constants.js';
export { BorrowedFd, Fd } from './fd.js';
export type { FdRef } from './fd.js';
export { SyscallError, errnoName, isErrno, printable } from './syscall-error.js';
export type { SyscallErrorContext } from './syscall-error.js';
export {
  openat2,
  tryOpenat2,
  fsopen,
  fsconfigSetString,
  fsconfigSetFlag,
  fsconfigSetFd,
  fsconfigCreate,
  fsmount,
  moveMountOntoFd,
  openTree,
  mountSetattr,
  umount2,
  umount2Async,
  mkdirat,
  unlinkat,
  fchdir,
  statx,
  listmount,
  readFsContextLog,
  probeSyscall,
} from './calls.js';
export type { OpenHow, MountAttr, Opened, Statx } from './calls.js';
export { probeSyscalls, probeUniqueMountId, procFdAvailable, hasCapability, probeProcPidns, probePivotRoot, userNamespaceOf, idMapped } from './probe.js';
export type { SyscallPresence } from './probe.js';
export { pipe2, posixSpawn, reapIfExited } from './spawn.js';
export { CAPABILITIES, CAPABILITY_NAMES, capabilityMask, capabilityNames, ownCapabilities } from './capabilities.js';
export type { CapabilityName, CapabilitySets } from './capabilities.js';
export { seqpacketPair, sendWithFds } from './fd-passing.js';
export { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from './flock.js';
export { openPidNamespace, pidfdOpen, pidfdSendSignal } from './pidfd.js';
export { CLONE_NEWNET, CLONE_NEWNS, exitAllThreads, openOwnNamespace, setns, setThreadUmask, unshareThreadFilesystem } from './namespaces.js';
export {
  acceptConnection,
  listenSeqpacket,
  peerCredentials,
  peerPidfd,
  receiveWithFds,
  sendMessage,
  setReceiveTimeout,
  shutdownListener,
} from './unix-socket.js';
export type { PeerCredentials, Received } from './unix-socket.js';
