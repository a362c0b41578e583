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
 * The hook server first (src/oci/hook-server.ts, `mountat hook-server`): a Node start costs far
 * more than a container start, so when the server's socket is there (/run/mountat/hook.sock, or
 * --hook-socket PATH: an argument, never the environment, which may be the container's), this
 * sends it the hook's arguments, the state and fds of its own namespaces, and prints what the
 * server answers. The protocol is in src/oci/hook-protocol.ts. When the socket is absent, cannot
 * be reached or refuses, it runs node as it always did: nothing depends on the server. Once the
 * request is sent, the server may have begun: a server that then goes away is a failure (one
 * line, exit 1), never a second attempt with node.
 *
 * Layout: this binary lives in <package>/hooks/, the hook (bundled into one file, so that
 * starting it resolves one module rather than dozens) is <package>/dist/hook.cjs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef MOUNTAT_NODE
#define MOUNTAT_NODE "/usr/bin/node"
#endif

#define DEFAULT_SOCKET "/run/mountat/hook.sock"
/* src/oci/hook-protocol.ts: MAX_REQUEST_BYTES, and an answer's two outputs of 32 KiB at most. */
#define MAX_REQUEST (256 * 1024)
#define MAX_ANSWER (80 * 1024)

static const char *const node_candidates[] = {MOUNTAT_NODE, "/usr/local/bin/node", "/usr/bin/node", NULL};

static char *const clean_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    NULL,
};

struct buffer {
  char *data;
  size_t length, capacity;
};

static int append(struct buffer *b, const void *data, size_t length) {
  if (b->length + length > b->capacity) {
    size_t capacity = b->capacity ? b->capacity : 4096;
    while (capacity < b->length + length) capacity *= 2;
    char *grown = realloc(b->data, capacity);
    if (grown == NULL) return -1;
    b->data = grown;
    b->capacity = capacity;
  }
  memcpy(b->data + b->length, data, length);
  b->length += length;
  return 0;
}

static int read_all(int fd, struct buffer *b) {
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (append(b, chunk, (size_t)n) != 0) return -1;
  }
}

static void write_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    length -= (size_t)n;
  }
}

enum outcome { FALLBACK = -1 };

/*
 * The request to the server at `path`: the exit status to exit with, or FALLBACK when the server
 * is not there or refused (nothing was done: node runs the hook). argv excludes --hook-socket.
 */
static int ask_server(const char *path, int argc, char **argv, const struct buffer *state) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof address.sun_path) return FALLBACK;
  strcpy(address.sun_path, path);
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) return FALLBACK;
  if (connect(sock, (struct sockaddr *)&address, sizeof address) != 0) {
    close(sock);
    return FALLBACK;
  }

  /* The namespaces the hook would run in, and the fd that --root-fd names. */
  int fds[4];
  int nfds = 0;
  static const char *const namespaces[] = {"/proc/self/ns/mnt", "/proc/self/ns/net", "/proc/self/ns/pid"};
  for (int i = 0; i < 3; i++) {
    fds[nfds] = open(namespaces[i], O_RDONLY | O_CLOEXEC);
    if (fds[nfds] < 0) goto fallback;
    nfds++;
  }
  /* The last --root-fd, as node's parseArgs takes it. */
  const char *root_fd = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--root-fd") == 0 && i + 1 < argc) root_fd = argv[i + 1];
    else if (strncmp(argv[i], "--root-fd=", 10) == 0) root_fd = argv[i] + 10;
  }
  if (root_fd != NULL) {
    char *end;
    long fd = strtol(root_fd, &end, 10);
    /* A value that names no open fd is sent as it is, with no fd: the server refuses it, and node reports it. */
    if (*root_fd >= '0' && *root_fd <= '9' && *end == '\0' && fd <= INT_MAX && fcntl((int)fd, F_GETFD) >= 0) fds[nfds++] = (int)fd;
  }

  struct buffer request = {0};
  uint32_t count = (uint32_t)(argc - 1);
  if (append(&request, "MHK1", 4) != 0 || append(&request, &count, sizeof count) != 0) goto fallback;
  for (int i = 1; i < argc; i++)
    if (append(&request, argv[i], strlen(argv[i]) + 1) != 0) goto fallback;
  if (append(&request, state->data ? state->data : "", state->length) != 0) goto fallback;
  if (request.length > MAX_REQUEST) goto fallback;

  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {.iov_base = request.data, .iov_len = request.length};
  struct msghdr message = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
  memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)nfds);
  /* Not sent (the server gone before reading, a message too large): nothing was done. */
  if (sendmsg(sock, &message, MSG_NOSIGNAL) != (ssize_t)request.length) goto fallback;
  free(request.data);
  for (int i = 0; i < nfds; i++)
    if (i < 3) close(fds[i]);

  char *answer = malloc(MAX_ANSWER);
  if (answer == NULL) {
    fprintf(stderr, "mountat-hook: out of memory waiting for the hook server at %s\n", path);
    return 1;
  }
  ssize_t n;
  do n = recv(sock, answer, MAX_ANSWER, 0);
  while (n < 0 && errno == EINTR);
  close(sock);
  if (n > 0 && answer[0] == 'R') return FALLBACK;
  if (n >= 6 && answer[0] == 'D') {
    uint32_t out;
    memcpy(&out, answer + 2, sizeof out);
    if (6 + (size_t)out <= (size_t)n) {
      write_all(1, answer + 6, out);
      write_all(2, answer + 6 + out, (size_t)n - 6 - out);
      return (unsigned char)answer[1];
    }
  }
  fprintf(stderr, "mountat-hook: the hook server at %s ended the connection without an answer (%s)\n", path,
          n < 0    ? strerror(errno)
          : n == 0 ? "it closed the socket: stopped or killed"
                   : "an answer it could not read");
  return 1;

fallback:
  for (int i = 0; i < nfds; i++)
    if (i < 3) close(fds[i]);
  close(sock);
  return FALLBACK;
}

/* The state read for the server, put back on stdin for node: a memfd, read from its start. */
static int restore_stdin(const struct buffer *state) {
  int fd = memfd_create("mountat-hook-state", 0);
  if (fd < 0) return -1;
  write_all(fd, state->data ? state->data : "", state->length);
  if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 0) < 0) return -1;
  if (fd != 0) close(fd);
  return 0;
}

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

  if (chdir("/") != 0) {
    fprintf(stderr, "mountat-hook: chdir /: %s\n", strerror(errno));
    return 127;
  }

  /* --hook-socket PATH (or "none") is the launcher's: taken out before node or the server sees argv. */
  const char *socket_path = DEFAULT_SOCKET;
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (args == NULL) return 127;
  int nargs = 0;
  args[nargs++] = argv[0];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--hook-socket") == 0 && i + 1 < argc) socket_path = argv[++i];
    else if (strncmp(argv[i], "--hook-socket=", 14) == 0) socket_path = argv[i] + 14;
    else args[nargs++] = argv[i];
  }

  /* podman's precreate stage mounts nothing and writes a whole config.json: node runs it. */
  int use_server = strcmp(socket_path, "none") != 0 && !(nargs > 1 && strcmp(args[1], "precreate") == 0);
  if (use_server) {
    struct buffer state = {0};
    int unreadable = read_all(0, &state) != 0;
    /* Nothing read (no stdin at all, say): node runs on the stdin it gets, and reports it as it always did. */
    if (unreadable && state.length == 0) goto start_node;
    if (unreadable) {
      fprintf(stderr, "mountat-hook: cannot read the container state on stdin: %s\n", strerror(errno));
      return 1;
    }
    int status = ask_server(socket_path, nargs, args, &state);
    if (status != FALLBACK) return status;
    if (restore_stdin(&state) != 0) {
      fprintf(stderr, "mountat-hook: cannot pass the container state on to node: %s\n", strerror(errno));
      return 127;
    }
    free(state.data);
  }

start_node:;
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

  /* node SCRIPT ARGS...: args[0] (this program's name) becomes the script. */
  memmove(args + 2, args + 1, sizeof *args * (size_t)nargs);
  args[0] = "node";
  args[1] = script;
  args[nargs + 1] = NULL;

  execve(node, args, clean_env);
  fprintf(stderr, "mountat-hook: cannot start %s: %s\n", node, strerror(errno));
  return 127;
}
