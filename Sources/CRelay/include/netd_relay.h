// The few Linux calls the relay needs that Swift's Glibc module does not import: splice(2),
// pipe2(2), eventfd(2) and F_SETPIPE_SZ sit behind _GNU_SOURCE, which must not be defined in a
// header Swift imports (it changes system types that Glibc's module defines too), so they are
// wrapped in shim.c; and epoll(7), whose header is plain.
#ifndef NETD_RELAY_H
#define NETD_RELAY_H

#include <sys/epoll.h>

/// splice(2) without offsets, non-blocking, moving pages where it can: between a socket and a pipe.
long netd_splice(int in, int out, unsigned long length);

/// A non-blocking, close-on-exec pipe.
int netd_pipe(int fds[2]);

/// Sets a pipe's capacity; returns the capacity the kernel granted, or -1.
int netd_set_pipe_size(int fd, int bytes);

/// A non-blocking, close-on-exec eventfd.
int netd_eventfd(void);

#endif
