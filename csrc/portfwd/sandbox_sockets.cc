#include "sandbox_sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "../core/fd.h"
#include "../core/netns.h"
#include "../core/nsocket.h"
#include "addr.h"
#include "rtnl.h"

namespace pfwd {

namespace {

constexpr int kBatch = 16;

struct Request {
  int family, type, transparent;
};

// Creates up to `n` sockets in the calling thread's namespace: how many (> 0), or -errno.
int MakeSockets(const Request& rq, int n, int* out) {
  int made = 0;
  for (; made < n; made++) {
    int fd = socket(rq.family, rq.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (rq.transparent) {
      // IP_TRANSPARENT lets the forwarder bind the client's (non-local) address
      // (ip(7)); the mark sends the server's replies to the local table (rtnl.h).
      // Both need CAP_NET_ADMIN in the namespace, checked here at setsockopt.
      // IP_BIND_ADDRESS_NO_PORT: a bind to port 0 leaves the port to connect(),
      // which picks one unique for the 4-tuple, cheaper than bind's search.
      int one = 1;
      unsigned mark = kTransparentMark;
      bool v6 = rq.family == AF_INET6;
      if (setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one, sizeof one) !=
              0 ||
          setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0 ||
          setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        break;
      }
    }
    out[made] = fd;
  }
  return made > 0 ? made : -errno;
}

// 1 if `a` is an address of the calling thread's namespace (it can be bound
// without IP_FREEBIND), 0 if not, -errno.
int IsLocal(const sockaddr_storage& a) {
  int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_storage any = a;
  SetPort(&any, 0);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&any), SockLen(any)) == 0 ? 1 : errno == EADDRNOTAVAIL ? 0 : -errno;
  close(fd);
  return rc;
}

struct Probe {
  bool has_target;
  sockaddr_storage target;
  bool transparent;
  NsFacts facts;
};

// The namespace side of Open, on a thread inside the namespace.
int Inspect(Probe* p) {
  int fd = RtnlOpen();
  if (fd < 0) return fd;
  podnet::Fd nl(fd);
  NsFacts& f = p->facts;
  f.has_global = FirstGlobalAddress(nl.get(), &f.global) == 0;
  f.has_gw4 = DefaultGateway(nl.get(), AF_INET, &f.gw4) == 0;
  f.has_gw6 = DefaultGateway(nl.get(), AF_INET6, &f.gw6) == 0;
  if (p->has_target) {
    int rc = IsLocal(p->target);
    f.target_local = rc > 0;
  } else {
    f.target_local = f.has_global;
  }
  // Replies reach the transparent socket only through this namespace's own
  // local delivery: a target elsewhere would answer the client directly.
  if (p->transparent && f.target_local) f.routing_err = -SetUpTransparentRouting(nl.get());
  return 0;
}

int InspectThunk(void* p) { return Inspect(static_cast<Probe*>(p)); }

struct Batch {
  Request rq;
  int fds[kBatch];
};
int BatchThunk(void* p) {
  auto* b = static_cast<Batch*>(p);
  return MakeSockets(b->rq, kBatch, b->fds);
}

}  // namespace

int SandboxSockets::Open(const std::string& netns, const std::string& userns, const sockaddr_storage* target,
                         bool transparent, std::string* what) {
  struct stat st;
  netns_ = podnet::OpenNetnsFd(netns.c_str(), &st);
  if (netns_ < 0) {
    *what = "open network namespace " + netns;
    return netns_ == -podnet::kNotNetns ? -EINVAL : netns_;
  }
  if (!userns.empty()) {
    podnet::Fd uns(open(userns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!uns || setns(uns.get(), CLONE_NEWUSER) != 0) {
      int e = errno;
      *what = (uns ? "join user namespace " : "open user namespace ") + userns;
      return -e;
    }
  }
  Probe probe{target != nullptr, target ? *target : sockaddr_storage{}, transparent, {}};
  int rc = podnet::RunInNetns(netns_, InspectThunk, &probe);
  if (rc < 0) {
    *what = "inspect network namespace " + netns;
    return rc;
  }
  facts_ = probe.facts;
  return 0;
}

int SandboxSockets::Refill(int family, int type, SockKind kind) {
  std::vector<int>& pool = Pool(family, type, kind);
  Request rq{family, type, kind == SockKind::Transparent};
  Batch b{rq, {}};
  int n = podnet::RunInNetns(netns_, BatchThunk, &b);
  if (n < 0) return n;
  pool.insert(pool.end(), b.fds, b.fds + n);
  return 0;
}

int SandboxSockets::Take(int family, int type, SockKind kind) {
  std::vector<int>& pool = Pool(family, type, kind);
  if (pool.empty()) {
    int rc = Refill(family, type, kind);
    if (rc < 0) return rc;
  }
  int fd = pool.back();
  pool.pop_back();
  return fd;
}

}  // namespace pfwd
