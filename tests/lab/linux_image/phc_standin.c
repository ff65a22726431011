/*
 * hvlab guest image only (tests/lab/linux_image/README.md, stand-in 8): the Hyper-V PTP clock for
 * chronyd.
 *
 * On a Hyper-V guest, hv_utils registers a PTP clock named "hyperv" while the host offers Time
 * Synchronization (drivers/hv/hv_util.c), the kernel creates /dev/ptpN for it and systemd's udev rule
 * links /dev/ptp_hyperv to it. A container has neither that driver nor udev: the lab's kernel
 * stand-in (kernel_standin.py) creates /dev/ptpN as an empty regular file and the /dev/ptp_hyperv link
 * while the lab host offers the service. This library, preloaded into chronyd only (drop-in
 * chrony.service.d/hvlab-standin.conf), answers the PTP ioctls on such a file the way the hyperv
 * clock answers them, reading the host's time (the container shares the host's clock, as the Hyper-V
 * clock reads the host's time):
 *
 *   PTP_CLOCK_GETCAPS(2)          all zero (the hyperv clock has no alarms, pins or adjustment)
 *   PTP_SYS_OFFSET(2)             n samples of (system, PHC) time, both CLOCK_REALTIME
 *   PTP_SYS_OFFSET_EXTENDED(2)    EOPNOTSUPP (the hyperv clock has no gettimex64)
 *   PTP_SYS_OFFSET_PRECISE(2)     EOPNOTSUPP (no cross timestamps)
 *   anything else                 ENOTTY
 *   any of them once the file is gone (the host withdrew the service): ENODEV, as after
 *   ptp_clock_unregister()
 *
 * Real character devices, and every other file, go to the C library untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ptp_clock.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "standin_open.h"

#define MAX_FDS 4096

static unsigned char standin_fd[MAX_FDS];

static int is_standin_path(const char *path) {
  char real[PATH_MAX];
  struct stat st;
  const char *p;

  if (realpath(path, real) == NULL)
    return 0;
  if (strncmp(real, "/dev/ptp", 8) != 0)
    return 0;
  for (p = real + 8; *p; p++)
    if (*p < '0' || *p > '9')
      return 0;
  if (p == real + 8)
    return 0;
  return stat(real, &st) == 0 && S_ISREG(st.st_mode);
}

static int track(int fd, const char *path) {
  if (fd >= 0 && fd < MAX_FDS)
    standin_fd[fd] = (unsigned char)is_standin_path(path);
  return fd;
}


#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

/* open and open64, openat and openat64 differ in the C library's symbol only. */
static int open_as(const char *symbol, const char *path, int flags, int mode) {
  return track(REAL(symbol, int (*)(const char *, int, ...))(path, flags, mode), path);
}

static int openat_as(const char *symbol, int dirfd, const char *path, int flags, int mode) {
  int fd = REAL(symbol, int (*)(int, const char *, int, ...))(dirfd, path, flags, mode);
  return path[0] == '/' ? track(fd, path) : fd;
}

int open(const char *path, int flags, ...) {
  return open_as("open", path, flags, MODE_ARG(flags));
}

int open64(const char *path, int flags, ...) {
  return open_as("open64", path, flags, MODE_ARG(flags));
}

int __open_2(const char *path, int flags) {
  return track(REAL("__open_2", int (*)(const char *, int))(path, flags), path);
}

int __open64_2(const char *path, int flags) {
  return track(REAL("__open64_2", int (*)(const char *, int))(path, flags), path);
}

int openat(int dirfd, const char *path, int flags, ...) {
  return openat_as("openat", dirfd, path, flags, MODE_ARG(flags));
}

int openat64(int dirfd, const char *path, int flags, ...) {
  return openat_as("openat64", dirfd, path, flags, MODE_ARG(flags));
}

int close(int fd) {
  if (fd >= 0 && fd < MAX_FDS)
    standin_fd[fd] = 0;
  return REAL("close", int (*)(int))(fd);
}

static void now(struct ptp_clock_time *t) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  t->sec = ts.tv_sec;
  t->nsec = (unsigned int)ts.tv_nsec;
  t->reserved = 0;
}

static int phc_ioctl(int fd, unsigned long request, void *arg) {
  struct stat st;
  unsigned int i;

  if (fstat(fd, &st) != 0 || st.st_nlink == 0) {
    errno = ENODEV; /* the clock was unregistered */
    return -1;
  }
  if (request == PTP_CLOCK_GETCAPS || request == PTP_CLOCK_GETCAPS2) {
    memset(arg, 0, sizeof(struct ptp_clock_caps));
    return 0;
  }
  if (request == PTP_SYS_OFFSET || request == PTP_SYS_OFFSET2) {
    struct ptp_sys_offset *offset = arg;
    if (offset->n_samples > PTP_MAX_SAMPLES) {
      errno = EINVAL;
      return -1;
    }
    for (i = 0; i < offset->n_samples; i++) {
      now(&offset->ts[2 * i]);
      now(&offset->ts[2 * i + 1]);
    }
    now(&offset->ts[2 * offset->n_samples]);
    return 0;
  }
  if (request == PTP_SYS_OFFSET_EXTENDED || request == PTP_SYS_OFFSET_EXTENDED2 ||
      request == PTP_SYS_OFFSET_PRECISE || request == PTP_SYS_OFFSET_PRECISE2) {
    errno = EOPNOTSUPP;
    return -1;
  }
  errno = ENOTTY;
  return -1;
}

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  void *arg;
  va_start(ap, request);
  arg = va_arg(ap, void *);
  va_end(ap);
  if (fd >= 0 && fd < MAX_FDS && standin_fd[fd])
    return phc_ioctl(fd, request, arg);
  return REAL("ioctl", int (*)(int, unsigned long, ...))(fd, request, arg);
}
