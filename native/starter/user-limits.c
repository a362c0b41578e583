#define _GNU_SOURCE
#include "user-limits.h"

#include "broker.h"

int limit_per_user(void) {
  return broker_install();
}
