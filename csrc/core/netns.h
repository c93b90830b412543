// Network namespace files, without N-API: functions return >= 0 or -errno.
// Persistent namespaces follow iproute2's `ip netns` (ip/ipnetns.c): an empty
// file made under a run directory that is a shared mount point, with the
// namespace's nsfs file bind-mounted onto it (ip-netns(8)).
#pragma once

#include <sys/stat.h>

namespace podnet {

// Returned (negated) when a file is not a network namespace.
constexpr int kNotNetns = 4096;

// Opens `path` and checks that it is a network namespace: an fd (O_CLOEXEC),
// -errno, or -kNotNetns. `st` gets its identity (nsfs device and inode). The
// file is first opened with O_PATH, which runs no open of the file itself (a
// FIFO would wait for a writer; a device's open can block or act), and opened
// for real only once it is known to be on nsfs.
int OpenNetnsFd(const char* path, struct stat* st);

// Sets `lo` up in the calling thread's network namespace: 0 or -errno.
// Async-signal-safe (socket and ioctl only), so a forked child may call it.
int SetLoopbackUp();

// Makes `dir` a shared mount point as `ip netns add` does (created if
// missing; bound onto itself first if it is not a mount point), serialized
// across processes by flock on the directory: 0 or -errno, `*step` naming the
// failed call.
int MakeSharedRunDir(const char* dir, const char** step);

// Creates `path` exclusively as an empty file with no permission bits (as
// iproute2 does), never reusing an existing file: 0 or -errno.
int CreateMountPoint(const char* path);

// Undoes CreateMountPoint and whatever was mounted on it since (best effort).
void UndoMountPoint(const char* path);

// Unmounts the network namespace mounted at `path` and unlinks the file it
// was mounted on: 0 (also when `path` does not exist), -errno (`*step` names
// the failed call), or -kNotNetns when `path` is neither a namespace mount nor
// an unmounted mount point left by CreateMountPoint or `ip netns add` (an
// empty regular file with no permission bits that nothing is mounted on).
// Nothing else is ever unmounted or unlinked.
int RemoveNetnsMount(const char* path, const char** step);

// Writes `value` to /proc/sys/<key> (`key` with slashes) as the calling
// thread's network namespace sees it: /proc/sys/net follows the namespace of
// the thread that opens it (proc_sys(5)). 0 or -errno.
int WriteSysctl(const char* key, const char* value, const char** step);

}  // namespace podnet
