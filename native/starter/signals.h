/* The starter's signal handling: what reaches the action, and the action's own dispositions. */
#ifndef MOUNTAT_STARTER_SIGNALS_H
#define MOUNTAT_STARTER_SIGNALS_H

#include <sys/types.h>

extern volatile pid_t child_pid;
extern int forwarding;

void handle_signals(void);
void default_signals(void);
void reset_signals(void);

#endif
