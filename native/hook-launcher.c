/*
 * mountat-hook: the executable a container runtime runs as an OCI hook.
 *
 * Why a static C launcher in front of Node: runc before 1.3.0 gives a createContainer hook
 * without an explicit `env` the container's own environment (CVE-2025-23266 came from a hook
 * that honoured LD_PRELOAD from it). A static binary has no dynamic loader to honour
 * LD_PRELOAD or LD_LIBRARY_PATH, and this one starts node with a fixed, minimal environment,
 * so NODE_OPTIONS, NODE_PATH and the rest never reach it either. It also leaves the rootfs:
 * runc starts createContainer hooks with the untrusted rootfs as working directory.
 *
 * Layout: this binary lives in <package>/hooks/, the hook (bundled into one file, so that
 * starting it resolves one module rather than dozens) is <package>/dist/hook.cjs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MOUNTAT_NODE
#define MOUNTAT_NODE "/usr/bin/node"
#endif

static const char *const node_candidates[] = {MOUNTAT_NODE, "/usr/local/bin/node", "/usr/bin/node", NULL};

static char *const clean_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    NULL,
};

int main(int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) {
    fprintf(stderr, "mountat-hook: cannot locate itself through /proc/self/exe: %s\n", strerror(errno));
    return 127;
  }
  self[n] = '\0';

  char script[PATH_MAX];
  if (snprintf(script, sizeof script, "%s/../dist/hook.cjs", dirname(self)) >= (int)sizeof script) {
    fprintf(stderr, "mountat-hook: installation path too long\n");
    return 127;
  }

  const char *node = NULL;
  for (const char *const *candidate = node_candidates; *candidate != NULL; candidate++) {
    if (access(*candidate, X_OK) == 0) {
      node = *candidate;
      break;
    }
  }
  if (node == NULL) {
    fprintf(stderr, "mountat-hook: node not found (looked at %s, /usr/local/bin/node, /usr/bin/node)\n", MOUNTAT_NODE);
    return 127;
  }

  if (chdir("/") != 0) {
    fprintf(stderr, "mountat-hook: chdir /: %s\n", strerror(errno));
    return 127;
  }

  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (args == NULL) return 127;
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  args[argc + 1] = NULL;

  execve(node, args, clean_env);
  fprintf(stderr, "mountat-hook: cannot start %s: %s\n", node, strerror(errno));
  return 127;
}
