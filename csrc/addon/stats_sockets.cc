#include "stats_sockets.h"

#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/nsocket.h"
#include "../core/userns_socket.h"

namespace podnet {
namespace {

// For an unprivileged caller: the namespace belongs to a user namespace this
// process is not in, which only a single-threaded process may join.
Fd SocketViaUserns(const NetlinkSocketJob& job) {
  Fd userns(ioctl(job.nsfd.get(), NS_GET_USERNS));
  if (!userns) ThrowErrno("ioctl(NS_GET_USERNS)", job.path);
  // Owned by our own user namespace: joining it gives nothing more; we lack privilege.
  struct stat own, target;
  if (stat("/proc/self/ns/user", &own) == 0 && fstat(userns.get(), &target) == 0 && own.st_ino == target.st_ino &&
      own.st_dev == target.st_dev) {
    throw ErrnoError(EPERM, "setns(CLONE_NEWNET)", job.path);
  }
  int fd = -1;
  const char* step = "";
  int rc = SocketsInUserns(userns.get(), job.nsfd.get(), AF_NETLINK, SOCK_RAW, 1, &fd, NETLINK_ROUTE, &step);
  if (rc < 0) throw ErrnoError(-rc, step, job.path);
  return Fd(fd);
}

}  // namespace

void OpenNetlinkSockets(std::vector<NetlinkSocketJob>& jobs) {
  std::vector<int> nsfds, out;
  std::vector<size_t> which;
  for (size_t i = 0; i < jobs.size(); i++) {
    if (jobs[i].failed) continue;
    nsfds.push_back(jobs[i].nsfd.get());
    which.push_back(i);
  }
  if (nsfds.empty()) return;
  out.assign(nsfds.size(), -1);
  std::unique_ptr<bool[]> joined(new bool[nsfds.size()]());
  int rc = SocketsInNetnsEach(nsfds.data(), static_cast<int>(nsfds.size()), AF_NETLINK, SOCK_RAW, NETLINK_ROUTE,
                              out.data(), joined.get());
  for (size_t k = 0; k < which.size(); k++) {
    NetlinkSocketJob& job = jobs[which[k]];
    try {
      if (rc < 0) throw ErrnoError(-rc, "pthread_create", job.path);
      if (out[k] >= 0) {
        job.sock = Fd(out[k]);
      } else if (!joined[k] && out[k] == -EPERM && geteuid() != 0) {
        job.sock = SocketViaUserns(job);
      } else {
        throw ErrnoError(-out[k], joined[k] ? "socket" : "setns(CLONE_NEWNET)", job.path);
      }
    } catch (const NativeError& e) {
      job.failed = true;
      job.error = e;
    }
  }
}

}  // namespace podnet
