/* The starter: one action's process tree, from the gate to the report of its end. */
#ifndef MOUNTAT_STARTER_STARTER_H
#define MOUNTAT_STARTER_STARTER_H

#include <sys/types.h>

#include "options.h"

void become_child(const struct options *o, char **envp, pid_t parent) __attribute__((noreturn));
int start_one(int argc, char **argv, char **envp);

#endif
