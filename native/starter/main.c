/*
 * mountat-action: starts one build action, contained, for the runner and `mountat exec`.
 *
 * Why a separate static program rather than Node's child_process: Node can neither start a
 * child in new namespaces, nor pivot it into a root, nor drop its capabilities, nor report its
 * rusage (wait4); and a static binary needs no library in the input root. The caller keeps all
 * policy (which namespaces, which capabilities, which user); this performs the steps in order,
 * each checked, each failure fatal and named, nothing of the starter's privilege left for the
 * action. The order follows bubblewrap's main() and runc's standard_init_linux.go: namespaces,
 * then the root (pivot_root, the old root unmounted), then credentials, a session keyring of its
 * own and capabilities, then NO_NEW_PRIVS, then only fds 0-2, then the seccomp filter, then exec.
 *
 * The files, one job each: options.c (the command line, parsed once), protocol.c (fds 3-5 and
 * the status lines on fd 5), starter.c (the action's processes: gate, init, wait, report),
 * steps.c (the containment steps, in order), user-limits.c (what the action may charge to
 * per-user kernel limits), broker.c (its inotify broker: the seccomp filter, the init's loop, the
 * broker process), filter.c (the action's own seccomp filter), cgroup.c (the action's cgroups, entered
 * by its own first process), signals.c, server.c (--serve, the
 * fork server), kernel.h (the kernel ABI the libc headers may lack), cleanup.h (fds owned by
 * scope), step-names.h (the step names, generated from src/sandbox/start-steps.ts) and
 * seccomp-policy.h (what the filter refuses, generated from src/sandbox/seccomp-policy.ts).
 *
 * usage: mountat-action [--pidns] [--root pivot|chroot|none] [--cwd PATH] [--network host|none] [--caps HEX]
 *                       [--uid N --gid N [--groups G,G,...]] [--allow-userns] [--allow-syscalls NAME,...]
 *                       [--cgroup FD] [--join FD,...] [--oom-score-adj N] [--forward-signals] -- ARGV...
 *        mountat-action --serve     (the runner's: fork a starter per request, see server.c)
 * fds:   0-5 as protocol.h says: the action's stdio, the input root, the gate, the status; 6 and up
 *        the action's cgroup's, as --cgroup and --join name them.
 * env:   exactly the action's environment; its PATH finds ARGV[0] inside the root.
 *
 *   --pidns        a new PID namespace; its pid 1 is a small init and the action is pid 2. The
 *                  init also serves the action's inotify broker (broker.c); without --pidns the
 *                  action has none, and its inotify instances are charged to its own uid.
 *   --root pivot   (the default) the input root becomes the root with pivot_root, the old root
 *                  detached: nothing of the caller's filesystem is left in the namespace.
 *   --root chroot  where a seccomp profile refuses pivot_root (Docker's default does): the input
 *                  root is mounted on a directory of an empty tmpfs stacked over "/", and chrooted
 *                  into. The old root stays beneath, out of reach of an action without
 *                  CAP_SYS_CHROOT and CAP_SYS_ADMIN (the caller's policy); and as its root is not
 *                  the namespace's root (the tmpfs is), the kernel refuses it a user namespace of
 *                  its own, where it would have them. (Chrooted into a root stacked directly over
 *                  "/", it would count as the namespace's root, and from a user namespace a chroot
 *                  of its own and ".." reach the old root: found by test/containment.test.ts.)
 *   --root none    stay in the caller's root (bb_runner's chrootIntoInputRoot: false); the action
 *                  still gets its own mount namespace, it just is not rooted elsewhere.
 *   --cwd PATH     the working directory, relative to the root, looked up again beneath the
 *                  new root (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS) once it is entered.
 *   --network none a network namespace with only loopback (up). Default: the caller's.
 *   --caps HEX     the capabilities a root action keeps (bounding, permitted, effective);
 *                  with --uid the action keeps none whatever this says. Default: none.
 *   --allow-userns the action may make user namespaces (its seccomp filter refuses them otherwise).
 *   --allow-syscalls NAME,...  refusals of the action's seccomp filter it does without (filter.c;
 *                  a name the filter does not refuse, or one that keeps user namespaces closed,
 *                  is a usage error).
 *   --cgroup FD    the action's cgroup in the v2 tree, a directory fd: its first process (the
 *                  init, or the action) is born there (clone3 CLONE_INTO_CGROUP; cgroup.c).
 *   --join FD,...  cgroup.procs files of its cgroup in the other trees (v1), open for writing:
 *                  that process writes "0" into each while it waits at its gate.
 *   --oom-score-adj N  that process's oom_score_adj (-1000..1000), inherited by the action.
 *   --nice N       that process's nice value (0..19), set before its gate and inherited by the
 *                  action, whose RLIMIT_NICE is lowered so that it cannot go below it.
 *   --forward-signals  SIGINT, SIGTERM, SIGHUP and SIGQUIT reach the action as themselves
 *                  (`mountat exec`); without it they end the action with SIGKILL (the runner).
 */
#define _GNU_SOURCE
#include <string.h>

#include "filter.h"
#include "options.h"
#include "server.h"
#include "starter.h"

int main(int argc, char **argv) {
  extern char **environ;
  if (argc == 2 && strcmp(argv[1], "--serve") == 0) return serve();
  struct options o;
  const char *why = parse_options(argc, argv, &o);
  if (why != NULL) usage(why);
  prepare_filter(&o);
  return start_one(&o, environ);
}
