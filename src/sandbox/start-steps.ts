// The steps of starting an action, as the starter names them in its "E" line, and what a failure
// of each means to whoever reads it (the runner's gRPC status, `mountat exec`'s exit code). The C
// side (native/starter/) reads this very table: scripts/generate-types.mjs writes START_STEPS to
// native/starter/step-names.h, and `--check` (run by scripts/test.sh) fails when that is stale.

/** The steps, in the order the starter takes them. */
export const START_STEPS = [
  'pidns',
  'fork',
  'cgroup',
  'mount',
  'namespaces',
  'pivot_root',
  'chroot',
  'network',
  'chdir',
  'capabilities',
  'credentials',
  'keyring',
  'no_new_privs',
  'limits',
  'fds',
  'seccomp',
  'exec',
  'wait',
] as const;
export type StartStep = (typeof START_STEPS)[number];

export interface StepMeaning {
  /**
   * The step fails for what the request names (its command, its working directory), so an errno
   * such as ENOENT is the caller's fault; every other step fails only for what the runner lacks.
   */
  byRequest: boolean;
  /** What an EPERM at this step means the runner (its container) was not given. */
  lacking?: string;
}

export const STEP_MEANING: Readonly<Record<StartStep, StepMeaning>> = {
  pidns: { byRequest: false, lacking: 'CAP_SYS_ADMIN' },
  fork: { byRequest: false },
  cgroup: { byRequest: false, lacking: "write access to the action's cgroup (docs/cgroups.md)" },
  mount: { byRequest: false, lacking: 'CAP_SYS_ADMIN' },
  namespaces: { byRequest: false, lacking: 'CAP_SYS_ADMIN' },
  pivot_root: { byRequest: false, lacking: 'CAP_SYS_ADMIN, and a seccomp profile that allows pivot_root' },
  chroot: { byRequest: false, lacking: 'CAP_SYS_CHROOT where pivot_root is refused' },
  network: { byRequest: false, lacking: 'CAP_NET_ADMIN for network "none"' },
  chdir: { byRequest: true },
  capabilities: { byRequest: false, lacking: "CAP_SETPCAP to reduce the action's capabilities" },
  credentials: { byRequest: false, lacking: 'CAP_SETUID and CAP_SETGID for runCommandsAs' },
  keyring: { byRequest: false },
  no_new_privs: { byRequest: false },
  limits: { byRequest: false },
  fds: { byRequest: false },
  seccomp: { byRequest: false, lacking: 'a seccomp profile that lets it load a filter of its own (seccomp, prctl PR_SET_SECCOMP)' },
  exec: { byRequest: true },
  wait: { byRequest: false },
};
