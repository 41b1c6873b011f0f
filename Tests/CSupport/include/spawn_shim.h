// Starting child processes for the tests and benchmarks without Foundation's Process, whose
// run() on Linux with Swift 6.3 sometimes crashes while it lists /proc/self/fd (an over-read of
// dirent names, swift-corelibs-foundation pull request 5472). posix_spawn's closefrom action,
// which does the same job in the kernel, sits behind _GNU_SOURCE, so it is wrapped here.
#ifndef NETD_TEST_SPAWN_H
#define NETD_TEST_SPAWN_H

#include <sys/types.h>

/// posix_spawn of `path` with `argv` and `envp` (NULL-terminated): descriptors `in`, `out` and
/// `err` become its 0, 1 and 2, every other descriptor is closed in the child, and it starts with
/// no signal blocked and every signal at its default (whatever the spawning thread had).
/// Returns 0 and the pid in `pid`, or an errno value.
int netd_test_spawn(const char *path, char *const argv[], char *const envp[], int in, int out, int err, pid_t *pid);

#endif
