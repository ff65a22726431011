/*
 * hvlab guest image only (tests/lab/linux_image/README.md, stand-ins 2 and 9): a character device of the
 * kernel's hv_utils transport, /dev/vmbus/hv_kvp or /dev/vmbus/hv_fcopy, for Debian's real hv_kvp_daemon
 * and hv_fcopy_daemon. Built once per device (build.sh): DEVICE_PATH and SOCKET_PATH are given with -D.
 *
 * On a Hyper-V guest, hv_utils registers the misc device vmbus/hv_kvp (vmbus/hv_fcopy) while the host
 * offers Key-Value Pair Exchange (Guest Service Interface): drivers/hv/hv_kvp.c, hv_fcopy.c, both over
 * hv_utils_transport.c. The daemon opens it, writes one message to register, then reads one message per
 * host request and writes one answer. A container cannot have that device: the lab's node has no driver
 * behind it. This library, preloaded into that daemon only (drop-ins hv-kvp-daemon.service.d and
 * hv-fcopy-daemon.service.d, hvlab-standin.conf), turns the daemon's open of DEVICE_PATH into a
 * connection to the lab host's side of the device (a SOCK_SEQPACKET socket at SOCKET_PATH, served by
 * tests/lab/hvlab/hvt_channel.py), and makes read and write on it behave as the character device does
 * (hv_utils_transport.c):
 *
 *   open    fails as a missing node does while the node is absent (the host does not offer the
 *           service); ENODEV when nothing serves the node; EBUSY while another process has the
 *           device open (hvt_op_open)
 *   read    blocks until the kernel side has a message, returns it whole; EINVAL (message kept) when
 *           the buffer is too small; EBADF once the device is gone (hvt_op_read)
 *   write   hands one message to the kernel side and returns what its on_msg callback returned:
 *           count, or EINVAL for a short, spurious or incompatible message; EBADF once the device
 *           is gone (hvt_op_write)
 *   pread, pwrite  as read and write: the device ignores the offset (hvt_op_read/write never look at
 *           it); hv_fcopy_daemon uses these
 *   poll    the socket's own: readable when a message waits, POLLHUP once the device is gone
 *
 * Framing on the socket (both directions): a header {u32 kind; s32 value} and the payload. The
 * host side sends OPEN_RESULT (errno or 0) once after accepting, MESSAGE (payload: what read()
 * returns) and WRITE_RESULT (errno or 0) after each WRITE; this side sends WRITE (payload: what
 * write() got) and READ_DONE after a read() consumed a MESSAGE (the kernel's on_read callback).
 * Every other file goes to the C library untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include "standin_open.h"

#if !defined(DEVICE_PATH) || !defined(SOCKET_PATH)
#error "build with -DDEVICE_PATH='\"/dev/vmbus/hv_...\"' -DSOCKET_PATH='\"/run/hvlab/hv_....sock\"'"
#endif
#define MAX_FDS 4096
#define ANSWER_TIMEOUT_MS 10000 /* the host side answers at once; this only bounds a broken lab */

enum frame_kind {
  OPEN_RESULT = 1, /* host -> guest */
  MESSAGE = 2,     /* host -> guest */
  WRITE_RESULT = 3, /* host -> guest */
  WRITE = 4,       /* guest -> host */
  READ_DONE = 5,   /* guest -> host */
};

struct frame_header {
  uint32_t kind;
  int32_t value;
};

static unsigned char device_fd[MAX_FDS];

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

static int is_device(const char *path) { return path != NULL && strcmp(path, DEVICE_PATH) == 0; }

/* Wait for the next frame header (not consumed). 1: there is one; 0: the host side closed the
 * device; -1: errno set. */
static int peek_header(int fd, struct frame_header *header, ssize_t *total, int timeout_ms) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  ssize_t n;

  if (timeout_ms >= 0) {
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready < 0)
      return -1;
    if (ready == 0) {
      errno = EIO;
      return -1;
    }
  }
  n = recv(fd, header, sizeof(*header), MSG_PEEK | MSG_TRUNC);
  if (n < 0)
    return -1;
  if (n == 0)
    return 0;
  if ((size_t)n < sizeof(*header)) {
    recv(fd, header, sizeof(*header), 0);
    errno = EIO;
    return -1;
  }
  *total = n;
  return 1;
}

/* The result frame (OPEN_RESULT or WRITE_RESULT) that answers this side's last request. */
static int take_result(int fd, uint32_t kind, int *value) {
  struct frame_header header;
  ssize_t total;
  int got = peek_header(fd, &header, &total, ANSWER_TIMEOUT_MS);

  if (got <= 0) {
    if (got == 0)
      errno = EBADF; /* hvt_op_*: the transport is being destroyed */
    return -1;
  }
  if (header.kind != kind) {
    errno = EIO; /* the host side broke the protocol: leave its frame, fail loudly */
    return -1;
  }
  recv(fd, &header, sizeof(header), 0);
  *value = header.value;
  return 0;
}

static int open_device(int flags) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  struct stat st;
  int fd, verdict = 0, saved;

  if (stat(DEVICE_PATH, &st) != 0)
    return -1; /* no node: the host does not offer the service (errno from stat, ENOENT) */
  fd = socket(AF_UNIX, SOCK_SEQPACKET | ((flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0), 0);
  if (fd < 0)
    return -1;
  strncpy(addr.sun_path, SOCKET_PATH, sizeof(addr.sun_path) - 1);
  if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    REAL("close", int (*)(int))(fd);
    errno = ENODEV; /* a node nothing serves */
    return -1;
  }
  if (take_result(fd, OPEN_RESULT, &verdict) != 0) {
    saved = errno == EBADF ? ENODEV : errno; /* closed before answering: nothing serves it */
    REAL("close", int (*)(int))(fd);
    errno = saved;
    return -1;
  }
  if (verdict != 0) {
    REAL("close", int (*)(int))(fd);
    errno = verdict;
    return -1;
  }
  if (fd >= MAX_FDS) {
    REAL("close", int (*)(int))(fd);
    errno = EMFILE;
    return -1;
  }
  device_fd[fd] = 1;
  return fd;
}


static int open_as(const char *symbol, const char *path, int flags, int mode) {
  if (is_device(path))
    return open_device(flags);
  return REAL(symbol, int (*)(const char *, int, ...))(path, flags, mode);
}

static int openat_as(const char *symbol, int dirfd, const char *path, int flags, int mode) {
  if (is_device(path))
    return open_device(flags);
  return REAL(symbol, int (*)(int, const char *, int, ...))(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...) { return open_as("open", path, flags, MODE_ARG(flags)); }

int open64(const char *path, int flags, ...) { return open_as("open64", path, flags, MODE_ARG(flags)); }

int __open_2(const char *path, int flags) {
  if (is_device(path))
    return open_device(flags);
  return REAL("__open_2", int (*)(const char *, int))(path, flags);
}

int __open64_2(const char *path, int flags) {
  if (is_device(path))
    return open_device(flags);
  return REAL("__open64_2", int (*)(const char *, int))(path, flags);
}

int openat(int dirfd, const char *path, int flags, ...) {
  return openat_as("openat", dirfd, path, flags, MODE_ARG(flags));
}

int openat64(int dirfd, const char *path, int flags, ...) {
  return openat_as("openat64", dirfd, path, flags, MODE_ARG(flags));
}

static int tracked(int fd) { return fd >= 0 && fd < MAX_FDS && device_fd[fd]; }

int close(int fd) {
  if (fd >= 0 && fd < MAX_FDS)
    device_fd[fd] = 0;
  return REAL("close", int (*)(int))(fd);
}

static ssize_t device_read(int fd, void *buf, size_t count) {
  struct frame_header header, done = {.kind = READ_DONE};
  struct iovec iov[2];
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
  ssize_t total, n;
  int got;

  got = peek_header(fd, &header, &total, -1); /* blocks, as hvt_op_read waits for a message */
  if (got <= 0) {
    if (got == 0)
      errno = EBADF;
    return -1;
  }
  if (header.kind != MESSAGE) {
    errno = EIO;
    return -1;
  }
  if (count < (size_t)(total - (ssize_t)sizeof(header))) {
    errno = EINVAL; /* the message stays, as in hvt_op_read */
    return -1;
  }
  iov[0].iov_base = &header;
  iov[0].iov_len = sizeof(header);
  iov[1].iov_base = buf;
  iov[1].iov_len = count;
  n = recvmsg(fd, &msg, 0);
  if (n < 0)
    return -1;
  if (n == 0) {
    errno = EBADF;
    return -1;
  }
  n -= (ssize_t)sizeof(header);
  done.value = (int32_t)n;
  send(fd, &done, sizeof(done), MSG_NOSIGNAL); /* hvt->on_read() */
  return n;
}

static ssize_t device_write(int fd, const void *buf, size_t count) {
  struct frame_header header = {.kind = WRITE, .value = (int32_t)count};
  struct iovec iov[2];
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
  int result;

  iov[0].iov_base = &header;
  iov[0].iov_len = sizeof(header);
  iov[1].iov_base = (void *)buf;
  iov[1].iov_len = count;
  if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
    if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
      errno = EBADF;
    return -1;
  }
  if (take_result(fd, WRITE_RESULT, &result) != 0)
    return -1;
  if (result != 0) {
    errno = result;
    return -1;
  }
  return (ssize_t)count;
}

ssize_t read(int fd, void *buf, size_t count) {
  if (tracked(fd))
    return device_read(fd, buf, count);
  return REAL("read", ssize_t (*)(int, void *, size_t))(fd, buf, count);
}

ssize_t write(int fd, const void *buf, size_t count) {
  if (tracked(fd))
    return device_write(fd, buf, count);
  return REAL("write", ssize_t (*)(int, const void *, size_t))(fd, buf, count);
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset) {
  if (tracked(fd))
    return device_read(fd, buf, count);
  return REAL("pread", ssize_t (*)(int, void *, size_t, off_t))(fd, buf, count, offset);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset) {
  if (tracked(fd))
    return device_read(fd, buf, count);
  return REAL("pread64", ssize_t (*)(int, void *, size_t, off_t))(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  if (tracked(fd))
    return device_write(fd, buf, count);
  return REAL("pwrite", ssize_t (*)(int, const void *, size_t, off_t))(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  if (tracked(fd))
    return device_write(fd, buf, count);
  return REAL("pwrite64", ssize_t (*)(int, const void *, size_t, off_t))(fd, buf, count, offset);
}
