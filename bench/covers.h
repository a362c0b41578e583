/* The covers of a hardened proc and sysfs: PROC_COVERS and SYSFS_COVERS of src/mounts/covers.ts,
 * in their order, for the benchmark's C programs (cycle.c, limit.c), which make them as
 * src/mounts/cover.ts does. One copy here, so that the two measure the same covers. */
#ifndef MOUNTAT_BENCH_COVERS_H
#define MOUNTAT_BENCH_COVERS_H

struct cover {
  const char *name;
  int readonly; /* else masked */
  int directory;
};
/* One line per kind (read-only, masked files, masked directories): kept as written. */
/* clang-format off */
static const struct cover proc_covers[] = {
  { "sys", 1, 1 }, { "sysrq-trigger", 1, 0 }, { "irq", 1, 1 }, { "bus", 1, 1 }, { "fs", 1, 1 },
  { "kcore", 0, 0 }, { "keys", 0, 0 }, { "timer_list", 0, 0 }, { "sched_debug", 0, 0 }, { "latency_stats", 0, 0 }, { "timer_stats", 0, 0 },
  { "key-users", 0, 0 }, { "interrupts", 0, 0 },
  { "acpi", 0, 1 }, { "asound", 0, 1 }, { "scsi", 0, 1 },
};
static const struct cover sysfs_covers[] = {
  { "firmware", 0, 1 }, { "devices/virtual/powercap", 0, 1 },
};
/* clang-format on */

#endif
