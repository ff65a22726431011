/* The lab's preloaded stand-ins (phc_standin.c, hvt_standin.c) replace the open family, whose mode
 * argument is there only with O_CREAT or O_TMPFILE (open(2)). Included by both; built by build.sh. */
#ifndef HVLAB_STANDIN_OPEN_H
#define HVLAB_STANDIN_OPEN_H

#include <fcntl.h>
#include <stdarg.h>

static int mode_of(int flags, va_list ap) {
  if (flags & (O_CREAT | __O_TMPFILE))
    return va_arg(ap, int);
  return 0;
}

/* The optional mode argument of the open call this stands in (a GNU C statement expression, so
 * va_start runs in the variadic function itself). */
#define MODE_ARG(flags)                                                                           \
  ({                                                                                              \
    va_list ap_;                                                                                  \
    int mode_;                                                                                    \
    va_start(ap_, flags);                                                                         \
    mode_ = mode_of(flags, ap_);                                                                  \
    va_end(ap_);                                                                                  \
    mode_;                                                                                        \
  })

#endif
