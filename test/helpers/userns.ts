// A user namespace that is not the host's, as a container with hostUsers: false or podman --uidmap makes: ids 0-65535
// inside are 100000-165535 on the host. util-linux's unshare writes such a map through newuidmap/newgidmap (the
// shadow suite's, which reads /etc/subuid); the test, root on the host, needs neither: a stand-in of its own writes the
// map into /proc/PID/uid_map directly, as root in the parent namespace may.
import { chmodSync, chownSync, lchownSync, lstatSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTree, scratchDir } from './roots.js';

/** Host uid (and gid) of the namespace's uid 0. */
export const HOST_BASE = 100000;
/** How many ids the namespace maps, from 0. */
export const MAPPED = 65536;

let shims: string | undefined;

/** A directory with `newuidmap` and `newgidmap` that write their arguments' map lines into /proc/PID/{uid,gid}_map. */
function mapShims(): string {
  if (shims) return shims;
  const dir = scratchDir('mountat-newuidmap-');
  chmodSync(dir, 0o755);
  writeFileSync(
    join(dir, 'newuidmap'),
    [
      '#!/bin/sh',
      '# newuidmap PID INSIDE OUTSIDE COUNT [INSIDE OUTSIDE COUNT...]: one write, as the kernel requires.',
      'file=uid_map; case "$0" in *gidmap) file=gid_map;; esac',
      'pid=$1; shift; map=',
      'while [ $# -ge 3 ]; do map="$map$1 $2 $3',
      '"; shift 3; done',
      'printf %s "$map" > "/proc/$pid/$file"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  symlinkSync('newuidmap', join(dir, 'newgidmap'));
  shims = dir;
  return dir;
}

/** Remove the stand-ins (a test file's afterAll, once nothing it started runs through them). */
export function removeMapShims(): void {
  if (shims) removeTree(shims);
  shims = undefined;
}

/**
 * The command line a program is started through to run as uid 0 of a new user namespace (ids 0-65535 → host
 * 100000-165535), with mount and PID namespaces of its own and a proc of that PID namespace, and with `net` a network
 * namespace that user namespace owns. The last process (the runner) is PID 1 there; `unshare` waits for it.
 *
 * `lockedProc`: the PID namespace and its proc are made first, in the parent user namespace, with /proc/keys covered
 * there (as a container runtime masks it); then the user and mount namespaces. The kernel locks mounts copied into a
 * mount namespace of a less privileged user namespace, so that cover cannot be taken away in the new one, and a new
 * proc is refused there (mount_too_revealing).
 */
export function usernsWrapper(options: { net: boolean; lockedProc?: boolean }): string[] {
  const map = `${HOST_BASE},0,${MAPPED}`;
  const pidAndProc = ['--pid', '--fork', '--kill-child', '--mount-proc'];
  return [
    ...(options.lockedProc
      ? ['unshare', '--mount', '--propagation=private', ...pidAndProc, 'sh', '-c', 'mount --bind /dev/null /proc/keys && exec "$@"', 'sh']
      : []),
    'env',
    `PATH=${mapShims()}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    'unshare',
    '--user',
    `--map-users=${map}`,
    `--map-groups=${map}`,
    // Become the namespace's root (host uid 100000): the test's own uid 0 is not mapped there.
    '--setuid=0',
    '--setgid=0',
    '--mount',
    '--propagation=private',
    ...(options.lockedProc ? [] : pidAndProc),
    ...(options.net ? ['--net'] : []),
    '--',
  ];
}

/** Make `path` and everything beneath it owned by the namespace's `uid` (host HOST_BASE + uid), as files a container's root writes are. */
export function ownInUserns(path: string, uid = 0): void {
  const host = HOST_BASE + uid;
  const walk = (at: string): void => {
    // lchown: the busybox applets are symlinks.
    const stat = lstatSync(at);
    if (stat.isSymbolicLink()) return lchownSync(at, host, host);
    chownSync(at, host, host);
    if (stat.isDirectory()) for (const name of readdirSync(at)) walk(join(at, name));
  };
  walk(path);
}

/** The PID (in this PID namespace) of the only child of `pid`: the process unshare --fork started. */
export function onlyChild(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  if (children.length !== 1) throw new Error(`process ${pid} has ${children.length} children, not one`);
  return Number(children[0]);
}

/** Mount points at or below `dir` in the mount namespace of process `pid`, as the host reads it. */
export function mountsUnderIn(pid: number, dir: string): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)));
}
