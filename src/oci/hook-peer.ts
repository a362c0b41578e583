// Who may ask the hook server for a hook: only what could have run the hook itself, a process of
// uid 0 in the host's user namespace holding CAP_SYS_ADMIN there (a runtime and the hooks it
// starts). A container's root in a user namespace of its own shows as its mapped uid and is
// refused, and so is a root that dropped its capabilities: the server would otherwise mount for
// it what it could not. Refused peers run the hook themselves (the launcher falls back to node).
import { fstatSync, readFileSync, statSync } from 'node:fs';
import { messageOf } from '../base/index.js';
import { peerCredentials, peerPidfd, type FdRef } from '../linux/index.js';

const CAP_SYS_ADMIN = 21n;

/** A peer that may be served, with what of its own the hook would have inherited: its umask. */
export interface Peer {
  pid: number;
  umask: number;
}

/** The peer on `connection` when it may be served, or why it is refused. */
export function checkPeer(connection: FdRef): Peer | { refused: string } {
  const refused = (why: string) => ({ refused: why });
  let pidfd;
  try {
    const peer = peerCredentials(connection);
    if (peer.uid !== 0) return refused(`uid ${peer.uid} (pid ${peer.pid}) is not root of the host's user namespace`);
    if (peer.pid <= 0) return refused('the peer has no pid in this PID namespace');
    // The pidfd pins the process that connected: its pid, checked again after /proc was read,
    // cannot have been given to another process meanwhile.
    pidfd = peerPidfd(connection);
    const status = readFileSync(`/proc/${peer.pid}/status`, 'utf8');
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (effective === undefined || ((BigInt(`0x${effective}`) >> CAP_SYS_ADMIN) & 1n) === 0n) return refused(`pid ${peer.pid} lacks CAP_SYS_ADMIN`);
    const theirs = statSync(`/proc/${peer.pid}/ns/user`);
    const ours = statSync('/proc/self/ns/user');
    if (theirs.ino !== ours.ino || theirs.dev !== ours.dev) return refused(`pid ${peer.pid} is in another user namespace`);
    if (pidfd) {
      const info = readFileSync(`/proc/self/fdinfo/${pidfd.fd}`, 'utf8');
      if (/^Pid:\s*(-?\d+)$/m.exec(info)?.[1] !== String(peer.pid)) return refused(`pid ${peer.pid} ended while it was checked`);
    }
    // The hook's own process would create mountpoints and records with the runtime's umask.
    const umask = /^Umask:\s*([0-7]+)$/m.exec(status)?.[1];
    return { pid: peer.pid, umask: umask === undefined ? 0o022 : parseInt(umask, 8) & 0o777 };
  } catch (error) {
    return refused(`cannot check the peer: ${messageOf(error)}`);
  } finally {
    pidfd?.close();
  }
}

/** Whether two fds name the same namespace (nsfs inodes). */
export function sameNamespace(a: FdRef, b: FdRef): boolean {
  const x = fstatSync(a.fd);
  const y = fstatSync(b.fd);
  return x.ino === y.ino && x.dev === y.dev;
}
