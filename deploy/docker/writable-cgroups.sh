#!/bin/sh
# The runner image's entrypoint, between tini and `mountat runner`: makes the container's cgroup mounts writable in
# its own mount namespace, then execs the command it is given.
#
# The runner makes a cgroup for every action below its own (docs/cgroups.md). Docker, podman and Kubernetes mount
# /sys/fs/cgroup read-only in every container that is not privileged, and Kubernetes has no setting to change that;
# a privileged container is no answer, as containerd gives it the host's cgroup namespace and the whole host's tree.
# The runner holds CAP_SYS_ADMIN, with which it could mount a cgroup file system of its own anyway: so the read-only
# flag is taken off the mounts it already has (a bind remount changes that mount alone, in this container's mount
# namespace; nothing of the host's changes). What it may then write is bounded by the cgroup namespace: on cgroup v2
# with a namespace of its own (Docker's, podman's and containerd's default there) its own cgroup and those below,
# and the kernel's nsdelegate keeps its own cgroup's limits out of its reach.
#
# Where this fails (no CAP_SYS_ADMIN, a seccomp or LSM profile refusing mount) it says so and starts the command
# anyway: the runner then refuses to start with a limit it cannot enforce, or warns once without one, and `mountat
# doctor` says what is missing.
set -u
# /proc/self/mountinfo: field 5 is the mount point, field 6 the mount's own options; the file system type follows
# the "-" separator (optional fields come before it). Mount points escape spaces as \040: cgroup mounts have none.
readonly=$(awk '{
  for (i = 7; i <= NF && $i != "-"; i++) {}
  if (($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") && $6 ~ /(^|,)ro(,|$)/) print $5
}' /proc/self/mountinfo)
failed=
for target in $readonly; do
  mount -o remount,bind,rw "$target" 2>/dev/null || failed="$failed $target"
done
if [ -n "$failed" ]; then
  echo "writable-cgroups: read-only still:$failed (a remount needs CAP_SYS_ADMIN and a seccomp and LSM profile that allow mount)" >&2
fi
exec "$@"
