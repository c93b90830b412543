#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fd.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace podnet {

int OpenNetnsFd(const char* path, struct stat* st) {
  Fd fd(open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return -errno;
  struct statfs sfs;
  if (fstatfs(fd.get(), &sfs) != 0) return -errno;
  if (sfs.f_type != NSFS_MAGIC || ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) return -kNotNetns;
  if (fstat(fd.get(), st) != 0) return -errno;
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

}  // namespace podnet
