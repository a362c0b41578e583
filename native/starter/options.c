#define _GNU_SOURCE
#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

void usage(const char *why) {
  fprintf(stderr, "mountat-action: %s\n", why);
  exit(126);
}

static int number(const char *text, long *value) {
  char *end;
  errno = 0;
  *value = strtol(text, &end, 10);
  return errno != 0 || end == text || *end != '\0' || *value < 0 ? -1 : 0;
}

/* The cgroups' fds follow the protocol's six (protocol.h), as the caller passed them. */
static int cgroup_fd(long fd) {
  return fd >= FIRST_CGROUP_FD && fd < FIRST_CGROUP_FD + 1 + MAX_JOIN;
}

const char *parse_options(int argc, char **argv, struct options *o) {
  *o = (struct options){.root = ROOT_PIVOT,
                        .cwd = ".",
                        .uid = -1,
                        .gid = -1,
                        .cgroup = -1,
                        .oom_score_adj = OOM_SCORE_KEEP,
                        .nice = NICE_KEEP,
                        .proc_fd = -1,
                        .channel = {-1, -1}};
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    } else if (strcmp(a, "--pidns") == 0) {
      o->pidns = 1;
    } else if (strcmp(a, "--root") == 0 && i + 1 < argc) {
      const char *how = argv[++i];
      if (strcmp(how, "pivot") == 0) o->root = ROOT_PIVOT;
      else if (strcmp(how, "chroot") == 0) o->root = ROOT_CHROOT;
      else if (strcmp(how, "none") == 0) o->root = ROOT_NONE;
      else return "--root is pivot, chroot or none";
    } else if (strcmp(a, "--root-copy") == 0) {
      o->root_copy = 1;
    } else if (strcmp(a, "--forward-signals") == 0) {
      o->forward_signals = 1;
    } else if (strcmp(a, "--cwd") == 0 && i + 1 < argc) {
      o->cwd = argv[++i];
      if (o->cwd[0] == '\0' || o->cwd[0] == '/') return "--cwd must be relative to the root";
    } else if (strcmp(a, "--network") == 0 && i + 1 < argc) {
      const char *mode = argv[++i];
      if (strcmp(mode, "none") == 0) o->network_none = 1;
      else if (strcmp(mode, "host") != 0) return "--network is host or none";
    } else if (strcmp(a, "--caps") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      o->caps = strtoull(argv[++i], &end, 16);
      if (errno != 0 || *end != '\0') return "bad --caps";
    } else if (strcmp(a, "--uid") == 0 && i + 1 < argc) {
      if (number(argv[++i], &o->uid) != 0) return "bad --uid";
    } else if (strcmp(a, "--gid") == 0 && i + 1 < argc) {
      if (number(argv[++i], &o->gid) != 0) return "bad --gid";
    } else if (strcmp(a, "--groups") == 0 && i + 1 < argc) {
      o->groups = argv[++i];
    } else if (strcmp(a, "--cgroup") == 0 && i + 1 < argc) {
      long fd;
      if (number(argv[++i], &fd) != 0 || !cgroup_fd(fd)) return "bad --cgroup";
      o->cgroup = (int)fd;
    } else if (strcmp(a, "--join") == 0 && i + 1 < argc) {
      for (const char *p = argv[++i];;) {
        char *end;
        errno = 0;
        long fd = strtol(p, &end, 10);
        if (errno != 0 || end == p || !cgroup_fd(fd) || o->joins >= MAX_JOIN) return "bad --join";
        o->join[o->joins++] = (int)fd;
        if (*end == '\0') break;
        if (*end != ',') return "bad --join";
        p = end + 1;
      }
    } else if (strcmp(a, "--oom-score-adj") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      long adj = strtol(argv[++i], &end, 10);
      if (errno != 0 || *end != '\0' || end == argv[i] || adj < -1000 || adj > 1000) return "bad --oom-score-adj";
      o->oom_score_adj = (int)adj;
    } else if (strcmp(a, "--nice") == 0 && i + 1 < argc) {
      long nice;
      if (number(argv[++i], &nice) != 0 || nice > 19) return "bad --nice";
      o->nice = (int)nice;
    } else if (strcmp(a, "--allow-userns") == 0) {
      o->userns = 1;
    } else if (strcmp(a, "--allow-syscalls") == 0 && i + 1 < argc) {
      o->allow_syscalls = argv[++i];
      const char *why = check_allowed_syscalls(o->allow_syscalls);
      if (why != NULL) return why;
    } else {
      return "unknown option";
    }
  }
  if (i >= argc) return "no command after --";
  if ((o->uid < 0) != (o->gid < 0)) return "--uid and --gid go together";
  if (o->root_copy && o->root == ROOT_NONE) return "--root-copy needs a root";
  o->argv = &argv[i];
  return NULL;
}
