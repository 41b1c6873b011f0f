// The few Linux calls the relay needs that Swift's Glibc module does not import
// (they sit behind _GNU_SOURCE, or outside its headers): splice(2), pipe2(2), eventfd(2),
// F_SETPIPE_SZ and epoll(7).
#ifndef NETD_RELAY_H
#define NETD_RELAY_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/// splice(2) without offsets, between a socket and a pipe.
static inline long netd_splice(int in, int out, unsigned long length) {
    return splice(in, 0, out, 0, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

/// A non-blocking, close-on-exec pipe.
static inline int netd_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

/// Sets a pipe's capacity; returns the capacity the kernel granted, or -1.
static inline int netd_set_pipe_size(int fd, int bytes) {
    return fcntl(fd, F_SETPIPE_SZ, bytes);
}

static inline int netd_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

#endif
