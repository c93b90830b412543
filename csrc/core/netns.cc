#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "fd.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace podnet {

namespace {

// Whether `path` itself (not what a symlink points to) is on nsfs: 1, 0 or -errno.
int IsNsfs(const char* path) {
  Fd p(open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!p) return -errno;
  struct statfs sfs;
  if (fstatfs(p.get(), &sfs) != 0) return -errno;
  return sfs.f_type == NSFS_MAGIC;
}

// Unmounts `path`, retrying a busy mount briefly, then detaching it lazily.
int Unmount(const char* path) {
  for (int attempt = 0;; attempt++) {
    if (umount2(path, UMOUNT_NOFOLLOW) == 0) return 0;
    if (errno != EBUSY) return -errno;
    if (attempt == 5) return umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0 ? 0 : -errno;
    struct timespec ts = {0, (10000L << attempt / 2) * 1000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

int OpenNetnsFd(const char* path, struct stat* st) {
  Fd p(open(path, O_PATH | O_CLOEXEC));
  if (!p) return -errno;
  struct statfs sfs;
  struct stat checked;
  if (fstatfs(p.get(), &sfs) != 0 || fstat(p.get(), &checked) != 0) return -errno;
  if (sfs.f_type != NSFS_MAGIC) return -kNotNetns;
  // setns(2) and ioctl(2) need a real open file. O_NONBLOCK: should the path
  // have been swapped meanwhile, not even a FIFO can block this open, and the
  // identity check below refuses what was opened. (Reopening the O_PATH fd
  // through /proc/self/fd would cost about twice the whole open.)
  Fd fd(open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) return -errno;
  if (fstat(fd.get(), st) != 0) return -errno;
  if (st->st_dev != checked.st_dev || st->st_ino != checked.st_ino) return -kNotNetns;
  if (ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) return -kNotNetns;
  return fd.release();
}

int SetLoopbackUp() {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int err = rc == 0 ? 0 : errno;
  close(s);
  return -err;
}

int MakeSharedRunDir(const char* dir, const char** step) {
  *step = "mkdir";
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -errno;
  *step = "open";
  Fd dfd(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return -errno;
  *step = "flock";
  if (flock(dfd.get(), LOCK_EX) != 0) return -errno;
  *step = "mount";
  if (mount("", dir, "none", MS_SHARED | MS_REC, nullptr) == 0) return 0;
  if (errno != EINVAL) return -errno;
  // Not a mount point yet: bind it onto itself, then make it shared.
  if (mount(dir, dir, "none", MS_BIND | MS_REC, nullptr) != 0) return -errno;
  if (mount("", dir, "none", MS_SHARED | MS_REC, nullptr) != 0) return -errno;
  return 0;
}

int CreateMountPoint(const char* path) {
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

void UndoMountPoint(const char* path) {
  int saved = errno;
  umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
  unlink(path);
  errno = saved;
}

int RemoveNetnsMount(const char* path, const char** step) {
  bool had_namespace = false;
  for (int unmounted = 0;; unmounted++) {
    struct statx stx;
    *step = "statx";
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE | STATX_MODE | STATX_SIZE, &stx) != 0) {
      return errno == ENOENT ? 0 : -errno;
    }
    const bool regular = S_ISREG(stx.stx_mode);
    int mounted;
    if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
      mounted = (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
    } else {  // before Linux 5.8: a namespace is the only mount this looks for
      *step = "open";
      mounted = IsNsfs(path);
      if (mounted < 0) return mounted == -ENOENT ? 0 : mounted;
    }
    if (mounted) {
      // Only a namespace (a regular file on nsfs) is unmounted; a namespace
      // may be mounted more than once on the same file.
      struct statfs sfs;
      *step = "statfs";
      if (regular && statfs(path, &sfs) != 0) return -errno;
      if (!regular || sfs.f_type != NSFS_MAGIC) return had_namespace ? 0 : -kNotNetns;
      if (unmounted == 8) return -EBUSY;
      *step = "umount2";
      if (int rc = Unmount(path); rc < 0) return rc;
      had_namespace = true;
      continue;
    }
    // Nothing mounted: the file is unlinked only if it is a mount point as
    // podnet and iproute2 make them, an empty regular file; one that never had
    // a namespace on it (left by a create cut short) must also have no
    // permission bits, so that an empty file of anyone else's is never taken.
    if (!regular || stx.stx_size != 0 || (!had_namespace && (stx.stx_mode & 07777) != 0)) {
      return had_namespace ? 0 : -kNotNetns;
    }
    *step = "unlink";
    if (unlink(path) != 0 && errno != ENOENT) return -errno;
    return 0;
  }
}

int WriteSysctl(const char* key, const char* value, const char** step) {
  char file[256];
  if (snprintf(file, sizeof file, "/proc/sys/%s", key) >= static_cast<int>(sizeof file)) return -ENAMETOOLONG;
  *step = "open";
  Fd f(open(file, O_WRONLY | O_CLOEXEC));
  if (!f) return -errno;
  *step = "write";
  size_t len = strlen(value);
  ssize_t n = write(f.get(), value, len);
  if (n < 0) return -errno;
  return static_cast<size_t>(n) == len ? 0 : -EIO;
}

}  // namespace podnet
