// podman's own `precreate` stage (oci-hooks(5)): the candidate config.json in, the one podman
// hands the runtime out. Pure code: no system calls, no file read.
//
// Why it exists: podman always puts its own proc at /proc and sysfs at /sys (with a cgroup
// mount at /sys/fs/cgroup) into the spec, and no `podman run` flag drops them. The runtime
// mounts those before the createContainer hook, whose openat2 of `proc` or `sys` then crosses
// a mount point (EXDEV) and the container fails. So when the container's annotations ask
// mountat for proc and/or sys, this stage takes podman's out of the spec and leaves the place
// to mountat's. Decisions, each for a reason:
//
// - Only what podman itself puts there is removed: proc at /proc, sysfs at /sys, and cgroup or
//   cgroup2 mounts beneath /sys (podman's /sys/fs/cgroup; runc expands it into one mount per
//   controller). Anything else at or beneath a place mountat takes (a volume at /sys/kernel/…,
//   a tmpfs at /proc/…) is refused, not dropped: mountat mounts over it after the runtime, so
//   it would be hidden, and dropping it would silently undo what the user asked for. Leaving
//   the cgroup mount in would not fail either, but runc would create `sys/fs/cgroup` in the
//   rootfs for it and mountat's sysfs would then hide it: a mount nobody can see, and
//   directories in the rootfs that nobody removes.
// - linux.maskedPaths and linux.readonlyPaths stay as they are. runc applies them after the
//   createContainer hooks, on top of mountat's proc and sysfs (as on its own): they only add to
//   mountat's hardened proc. crun applies them before the hooks, where the rootfs has no /proc
//   or /sys any more, so they find nothing; mountat's hardened proc and sysfs cover /proc and
//   /sys/firmware themselves, and sysfs is read-only (but /sys/dev/block is then not masked).
// - runc needs a proc at createContainer (it opens /proc/self/fd); mountat's createContainer
//   hook mounts one before runc needs it, so removing podman's /proc is safe there.
// - runc writes linux.sysctl into /proc/sys after the createContainer hooks, before its
//   readonlyPaths: with mountat's hardened proc, /proc/sys is already read-only then and the
//   container fails (EROFS). podman puts `net.ipv4.ping_group_range=0 0` into every container
//   with a network namespace of its own (containers.conf's default_sysctls); that one default is
//   dropped (the namespace keeps the kernel's "1 0": unprivileged ICMP sockets are off, as on a
//   host by default). Any other sysctl is refused, naming it: it is what someone asked for.
// - A bad org.mountat.* annotation is not this stage's to report (see specForMountat): the spec
//   passes through unchanged and the createContainer hook refuses it where the user can read it.
// - A spec without any org.mountat.* annotation passes through byte for byte: podman runs
//   the stage only when the hooks.d file's annotation pattern matches, but a hooks.d file with
//   another pattern must not rewrite containers that are not mountat's.
import { posix } from 'node:path';
import { messageOf } from '../base/index.js';
import { ANNOTATION_PREFIX, containerPlan, type BasePlan } from './annotations.js';
import { HookError } from './errors.js';

export const PRECREATE_STAGE = 'precreate';

/** Where mountat may take a runtime's mount's place: the plan target, and the spec types podman puts there. */
const REPLACEABLE: Record<string, { at: string; beneath: readonly string[] }> = {
  proc: { at: 'proc', beneath: [] },
  sys: { at: 'sysfs', beneath: ['cgroup', 'cgroup2'] },
};

/** podman's default sysctl (containers.conf default_sysctls), dropped when mountat makes proc. */
const PODMAN_DEFAULT_SYSCTLS: Record<string, string> = { 'net.ipv4.ping_group_range': '0 0' };

/** A mount of the spec: its destination checked, the rest as it came. */
type SpecMount = Record<string, unknown> & { destination: string };

/** The spec: an object whose mounts each have a destination. */
type Spec = Record<string, unknown> & { mounts: SpecMount[] };

function fail(why: string): never {
  throw new HookError(`precreate: ${why}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSpecMount(value: unknown): value is SpecMount {
  return isObject(value) && typeof value.destination === 'string';
}

function parseSpec(text: string): Spec {
  if (text.trim() === '') fail('no config.json on stdin (podman writes the candidate spec there)');
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (error) {
    fail(`the config.json on stdin is not JSON: ${messageOf(error)}`);
  }
  if (!isObject(spec)) fail('the config.json on stdin is not a JSON object');
  if (!Array.isArray(spec.mounts)) fail(`config.json has no mounts array (mounts: ${JSON.stringify(spec.mounts) ?? 'missing'})`);
  const mounts = spec.mounts.map((mount: unknown, index): SpecMount => {
    if (!isSpecMount(mount)) fail(`config.json mounts[${index}] has no destination string`);
    return mount;
  });
  if (spec.annotations !== undefined && !isObject(spec.annotations)) fail('config.json annotations is not an object');
  // The same keys in the same order: the mounts array replaced by its checked copy.
  return { ...spec, mounts };
}

/** "/sys/fs/cgroup/" → "sys/fs/cgroup"; relative to the root, as plan targets are. */
function relative(destination: string): string {
  return posix.normalize(`/${destination}`).replace(/^\/+|\/+$/g, '');
}

function describeMount(mount: SpecMount): string {
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- type and source are strings in any spec podman writes; unchecked, they are shown as they always were
  return `${mount.destination} (${String(mount.type ?? 'no type')}${mount.source ? ` from ${String(mount.source)}` : ''})`;
}

/** Which of proc and sys mountat's plan for these annotations takes: validated as the createContainer hook will. */
function takenPlaces(annotations: Record<string, string | undefined>, base: BasePlan | undefined): string[] {
  const plan = containerPlan(annotations, base);
  return Object.keys(REPLACEABLE).filter((place) => plan.mounts.some((mount) => mount.target === place));
}

function withoutTakenMounts(mounts: SpecMount[], places: string[]): SpecMount[] {
  return mounts.filter((mount) => {
    const path = relative(mount.destination);
    const place = places.find((candidate) => path === candidate || path.startsWith(`${candidate}/`));
    if (place === undefined) return true;
    const replaceable = REPLACEABLE[place]!;
    if (path === place ? mount.type === replaceable.at : replaceable.beneath.some((type) => type === mount.type)) return false;
    fail(
      `mount ${describeMount(mount)} lies at or beneath /${place}, where mountat mounts after the runtime and would hide it; remove it or leave ${place} out of the ${ANNOTATION_PREFIX}* annotations`,
    );
  });
}

function withoutDefaultSysctls(linux: unknown): unknown {
  if (!isObject(linux) || linux.sysctl === undefined) return linux;
  if (!isObject(linux.sysctl)) fail('config.json linux.sysctl is not an object');
  const kept = Object.entries(linux.sysctl).filter(([key, value]) => PODMAN_DEFAULT_SYSCTLS[key] !== value);
  const [asked] = kept;
  if (asked) {
    fail(
      `linux.sysctl ${asked[0]}=${JSON.stringify(asked[1])}: runc writes sysctls into /proc/sys after the createContainer hook, where mountat's proc is already read-only; leave proc out of the ${ANNOTATION_PREFIX}* annotations to set sysctls`,
    );
  }
  const { sysctl: _dropped, ...rest } = linux;
  return rest;
}

/**
 * The spec podman should hand the runtime: `text` itself when no org.mountat.* annotation is
 * there, or a bad one; otherwise without podman's own proc and sysfs where mountat's plan takes
 * their place. Refuses (HookError) a spec that is not one, and what mountat's mounts would hide.
 * `base` is the plan the createContainer hook gets (its --plan file), if any.
 */
export function specForMountat(text: string, base?: BasePlan): string {
  const spec = parseSpec(text);
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- checked to be an object only: its values are strings in any spec podman writes (the OCI spec's map[string]string)
  const annotations = (spec.annotations ?? {}) as Record<string, string | undefined>;
  if (!Object.keys(annotations).some((key) => key.startsWith(ANNOTATION_PREFIX))) return text;
  let places: string[];
  try {
    places = takenPlaces(annotations, base);
  } catch (error) {
    // A bad annotation: the spec goes on unchanged, for the createContainer hook to refuse
    // with the same line before it mounts or creates anything. podman 4.3.1 throws a precreate
    // hook's stderr away (the user would read only "executing [mountat-hook precreate]: exit
    // status 1"); runc shows a createContainer hook's line in its own error, and crun in the
    // file its run.oci.hooks.stderr annotation names.
    if (error instanceof HookError) return text;
    throw error;
  }
  if (places.length === 0) return text;
  const mounts = withoutTakenMounts(spec.mounts, places);
  const changed: Record<string, unknown> = { ...spec, mounts };
  if (places.includes('proc') && spec.linux !== undefined) changed.linux = withoutDefaultSysctls(spec.linux);
  return JSON.stringify(changed);
}
