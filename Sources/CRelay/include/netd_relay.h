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

/// Names the calling thread (at most 15 bytes), as ps and perf show it.
int netd_name_this_thread(const char *name);

/// sendmsg(2) of `length` bytes on a stream socket with `descriptor` attached (SCM_RIGHTS) to
/// the first of them, never blocking and never raising SIGPIPE. Returns the bytes sent (the
/// descriptor went with the first) or -1 with errno.
long netd_send_with_descriptor(int socket, const void *bytes, unsigned long length, int descriptor);

/// recvmsg(2) of up to `capacity` bytes; a descriptor that came with them (SCM_RIGHTS, made
/// close-on-exec) is stored in `descriptor`, else -1 is. Returns the bytes read, or -1 with errno.
long netd_receive_with_descriptor(int socket, void *bytes, unsigned long capacity, int *descriptor);

/// Bytes written to a socket and not yet read by its peer (ioctl SIOCOUTQ), or -1.
int netd_unread_bytes(int socket);

#endif
