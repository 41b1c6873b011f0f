// _GNU_SOURCE is defined here, in a file of its own, not in the header Swift imports.
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "netd_relay.h"

long netd_splice(int in, int out, unsigned long length) {
    return splice(in, NULL, out, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int netd_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

int netd_set_pipe_size(int fd, int bytes) {
    return fcntl(fd, F_SETPIPE_SZ, bytes);
}

int netd_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}
