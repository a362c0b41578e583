#define _GNU_SOURCE
#include "raw.h"

#include <errno.h>
#include <stdint.h>

#if defined(RAW_CLONE3)
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x)
/*
 * raw_clone3(args, size, fn, arg): rdi, rsi, rdx, rcx. fn and arg are kept in r9 and r8, which
 * the syscall instruction leaves alone (it clobbers rcx and r11) and which the child inherits.
 * The kernel starts the child on args->stack + args->stack_size with rax 0; the child aligns its
 * stack, calls fn(arg) and exits with its result without ever returning. The parent returns rax:
 * the child's pid or -errno. (glibc's own clone3 is internal to it, and its clone() has no
 * CLONE_INTO_CGROUP.)
 *
 * raw_clone(flags, stack_top, fn, arg): the same with the older clone, whose arguments are flags,
 * the new stack's top, and three the kernel reads only for flags we never pass (parent and child
 * tid, tls): rdx, r10 and r8 then carry nothing it looks at. Its child takes the same path.
 */
long raw_clone(unsigned long flags, char *stack_top, int (*fn)(void *), void *arg);

// clang-format off
__asm__(".text\n"
        ".globl raw_clone3\n"
        ".type raw_clone3, @function\n"
        "raw_clone3:\n"
        "  mov %rcx, %r8\n"
        "  mov %rdx, %r9\n"
        "  mov $" TEXT(SYS_clone3) ", %eax\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jz mountat_clone_child\n"
        "  ret\n"
        ".size raw_clone3, .-raw_clone3\n"
        ".globl raw_clone\n"
        ".type raw_clone, @function\n"
        "raw_clone:\n"
        "  mov %rcx, %r8\n"
        "  mov %rdx, %r9\n"
        "  xor %edx, %edx\n"
        "  xor %r10d, %r10d\n"
        "  mov $" TEXT(SYS_clone) ", %eax\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jz mountat_clone_child\n"
        "  ret\n"
        ".size raw_clone, .-raw_clone\n"
        "mountat_clone_child:\n"
        "  xor %ebp, %ebp\n"
        "  and $-16, %rsp\n"
        "  mov %r8, %rdi\n"
        "  call *%r9\n"
        "  mov %eax, %edi\n"
        "  mov $" TEXT(SYS_exit_group) ", %eax\n"
        "  syscall\n"
        "  hlt\n");
// clang-format on

long clone_sharing(struct clone_args_ *args, int *born, int (*fn)(void *), void *arg) {
  /* Said before each attempt: the child (which shares our memory) may read it at once. */
  *born = (args->flags & CLONE_INTO_CGROUP_) != 0;
  long pid = raw_clone3(args, sizeof *args, fn, arg);
  /* ENOSYS: clone3 refused, as the default seccomp profiles of Docker and podman refuse it (so that
   * glibc falls back to clone); E2BIG: a kernel before 5.7, without its cgroup field. */
  if (pid != -ENOSYS && pid != -E2BIG) return pid;
  args->flags &= ~(uint64_t)CLONE_INTO_CGROUP_;
  *born = 0;
  return raw_clone((unsigned long)args->flags | (unsigned long)args->exit_signal, (char *)args->stack + args->stack_size, fn, arg);
}
#endif
