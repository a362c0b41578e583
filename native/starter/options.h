/* The starter's command line, parsed into one struct (main.c documents each option). */
#ifndef MOUNTAT_STARTER_OPTIONS_H
#define MOUNTAT_STARTER_OPTIONS_H

#include <stdint.h>

enum root_change { ROOT_PIVOT, ROOT_CHROOT, ROOT_NONE };

struct options {
  int pidns, network_none, forward_signals;
  enum root_change root;
  const char *cwd;
  uint64_t caps;
  long uid, gid;
  const char *groups;
  char **argv;
};

void usage(const char *why) __attribute__((noreturn));
void parse(int argc, char **argv, struct options *o);

#endif
