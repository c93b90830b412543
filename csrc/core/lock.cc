#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>

#include "fd.h"

namespace podnet {

int LockFileExclusive(const char* path, const char** step) {
  *step = "open";
  Fd f(open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!f) return -errno;
  *step = "flock";
  while (flock(f.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return -errno;
  }
  return f.release();
}

}  // namespace podnet
