/* The starter's command line, parsed once into one struct (main.c documents each option). */
#ifndef MOUNTAT_STARTER_OPTIONS_H
#define MOUNTAT_STARTER_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

struct sock_fprog;

/* The fds a request may carry beside the protocol's six (protocol.h): the cgroups to join. */
enum { FIRST_CGROUP_FD = 6, MAX_JOIN = 8, OOM_SCORE_KEEP = 10000, NICE_KEEP = 100 };

enum root_change { ROOT_PIVOT, ROOT_CHROOT, ROOT_NONE };

struct options {
  int pidns, network_none, forward_signals, userns;
  enum root_change root;
  /* The root fd is a detached copy made for this action alone (--root-copy): attached as it is. */
  int root_copy;
  const char *cwd;
  uint64_t caps;
  long uid, gid;
  const char *groups;
  /* --allow-syscalls: a comma list of names of the filter's refusals (filter.c), or NULL. */
  const char *allow_syscalls;
  /* --cgroup FD: the action's cgroup in the v2 tree (a directory fd), born into with
   * clone3(CLONE_INTO_CGROUP); -1 for none. --join FD,...: cgroup.procs files (v1 trees, opened
   * for writing) the child joins by writing "0". --oom-score-adj N, or OOM_SCORE_KEEP. --nice N
   * (0..19), or NICE_KEEP. */
  int cgroup;
  int join[MAX_JOIN];
  int joins;
  int oom_score_adj;
  int nice;
  char **argv;
  /* Not options: the action's seccomp filter, built from them once parsed (prepare_filter in
   * filter.c); NULL where it could not be built, and the action then fails at its seccomp step
   * with filter_error. Its first filter_notify instructions (0 where the kernel has no user
   * notification) hand inotify to the broker, and are loaded only where there is one. */
  const struct sock_fprog *filter;
  size_t filter_notify;
  int filter_error;
  /* Not options either: this action's own state, set as it starts. Kept here, with the rest of
   * what its processes read, because an init and its action may share the server's memory
   * (shares_memory, server.c): what is theirs alone must live in memory of theirs alone, and the
   * options do (a block of the server's per init), never in a static variable.
   *   born_into_cgroup: its first process was born into the v2 cgroup (cgroup.c).
   *   shares_memory: that process, the init, shares the server's memory (CLONE_VM), and so
   *     stays out of the action's cgroups, which the action enters itself (server.c, steps.c).
   *   proc_fd: with shares_memory, the caller's /proc, where the action writes its own
   *     oom_score_adj (start_action); -1 otherwise.
   *   channel: the broker's socket pair, the init's end and the action's (broker.c).
   *   action_stack: where the action runs until its exec (starter.c), NULL for the starter's own. */
  int born_into_cgroup, shares_memory, proc_fd;
  int channel[2];
  char *action_stack;
  size_t action_stack_size;
};

/*
 * Reads argv (argv[0] the program's name, the action's ARGV after "--") into *o, pointing into
 * argv. Returns NULL, or why the command line is malformed; *o then holds what came before.
 */
const char *parse_options(int argc, char **argv, struct options *o);
/* A malformed command line: say why on stderr, exit 126. */
void usage(const char *why) __attribute__((noreturn));

#endif
