// Network namespace files, without N-API: functions return >= 0 or -errno.
#pragma once

#include <sys/stat.h>

namespace podnet {

// Returned (negated) when a file opens but is not a network namespace.
constexpr int kNotNetns = 4096;

// Opens `path` and checks that it is a network namespace: an fd (O_CLOEXEC),
// -errno, or -kNotNetns. `st` gets its identity (nsfs device and inode).
int OpenNetnsFd(const char* path, struct stat* st);

// Sets `lo` up in the calling thread's network namespace: 0 or -errno.
// Async-signal-safe (socket and ioctl only), so a forked child may call it.
int SetLoopbackUp();

}  // namespace podnet
