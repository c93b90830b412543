// Advisory whole-file locks (flock(2)) that serialize processes sharing a
// state directory. The lock lives as long as the returned fd.
#pragma once

namespace podnet {

// Opens `path` (created 0600 if missing) and takes an exclusive lock, waiting
// for it: the fd (O_CLOEXEC), or -errno with `*step` naming the failed call.
int LockFileExclusive(const char* path, const char** step);

}  // namespace podnet
