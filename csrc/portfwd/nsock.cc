#include "nsock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "../core/fd.h"
#include "../core/netns.h"
#include "../core/nsocket.h"
#include "../core/scm_rights.h"
#include "rtnl.h"

namespace pfwd {

namespace {

constexpr int kBatch = 16;
static_assert(kBatch <= podnet::kMaxPassedFds, "one batch per message");

struct Request {
  int family, type, transparent;
};

// Creates up to `n` sockets in the calling thread's namespace: how many (> 0), or -errno.
// Async-signal-safe (the helper child calls it).
int MakeSockets(const Request& rq, int n, int* out) {
  int made = 0;
  for (; made < n; made++) {
    int fd = socket(rq.family, rq.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    if (rq.transparent) {
      // IP_TRANSPARENT lets the forwarder bind the client's (non-local) address
      // (ip(7)); the mark sends the server's replies to the local table (rtnl.h).
      // Both need CAP_NET_ADMIN in the namespace, checked here at setsockopt.
      int one = 1;
      unsigned mark = kTransparentMark;
      bool v6 = rq.family == AF_INET6;
      if (setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one, sizeof one) != 0 ||
          setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
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
  socklen_t len = a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (a.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&any)->sin6_port = 0;
  else reinterpret_cast<sockaddr_in*>(&any)->sin_port = 0;
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&any), len) == 0 ? 1 : errno == EADDRNOTAVAIL ? 0 : -errno;
  close(fd);
  return rc;
}

struct Probe {
  bool has_target;
  sockaddr_storage target;
  bool transparent;
  NsFacts facts;
};

// The namespace side of Open: async-signal-safe (syscalls on stack buffers).
int Inspect(Probe* p) {
  podnet::Fd nl(RtnlOpen());
  if (!nl) return nl.get();
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

// The unprivileged helper: joins the namespaces, inspects, then serves socket
// batches until the forwarder goes away. Runs in a child forked from the
// still single-threaded forwarder; it never returns.
[[noreturn]] void HelperMain(pid_t parent, int chan, int userns, int netns, Probe* probe) {
  // Ends with the forwarder. The parent may have died before prctl took
  // effect: then nobody would send the signal (prctl(2)), so check.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);
  int err = 0;
  if (setns(userns, CLONE_NEWUSER) != 0 || setns(netns, CLONE_NEWNET) != 0) err = errno;
  close(userns);
  close(netns);
  if (!err) err = -Inspect(probe);
  struct { int err; NsFacts facts; } hello{err, probe->facts};
  if (send(chan, &hello, sizeof hello, MSG_NOSIGNAL) != sizeof hello || err) _exit(1);
  for (;;) {
    Request rq;
    ssize_t r = recv(chan, &rq, sizeof rq, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r != sizeof rq) _exit(0);  // forwarder gone
    int fds[kBatch];
    int n = MakeSockets(rq, kBatch, fds);
    int rc = podnet::SendFds(chan, n > 0 ? 0 : -n, fds, n > 0 ? n : 0);
    for (int i = 0; i < n; i++) close(fds[i]);
    if (rc < 0) _exit(0);
  }
}

}  // namespace

int NsSockets::Open(const std::string& netns, const std::string& userns, const sockaddr_storage* target,
                    bool transparent, std::string* what) {
  struct stat st;
  netns_ = podnet::OpenNetnsFd(netns.c_str(), &st);
  if (netns_ < 0) {
    *what = "open network namespace " + netns;
    return netns_ == -podnet::kNotNetns ? -EINVAL : netns_;
  }
  Probe probe{target != nullptr, target ? *target : sockaddr_storage{}, transparent, {}};
  if (userns.empty()) {
    int rc = podnet::RunInNetns(netns_, InspectThunk, &probe);
    if (rc < 0) {
      *what = "inspect network namespace " + netns;
      return rc;
    }
    facts_ = probe.facts;
    return 0;
  }
  podnet::Fd uns(open(userns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!uns) {
    *what = "open user namespace " + userns;
    return -errno;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    *what = "socketpair";
    return -errno;
  }
  pid_t parent = getpid();
  helper_ = fork();
  if (helper_ < 0) {
    *what = "fork";
    return -errno;
  }
  if (helper_ == 0) {
    // Keep only what it needs (not stdin or the ready/exit fds, whose owner
    // must see them close with the forwarder).
    close(sv[0]);
    close(0);
    close(3);
    close(4);
    HelperMain(parent, sv[1], uns.get(), netns_, &probe);
  }
  close(sv[1]);
  chan_ = sv[0];
  struct { int err; NsFacts facts; } hello{};
  ssize_t r;
  do r = recv(chan_, &hello, sizeof hello, 0); while (r < 0 && errno == EINTR);
  if (r != sizeof hello || hello.err) {
    *what = r != sizeof hello ? "namespace helper died" : "join namespaces " + userns + " and " + netns;
    return r != sizeof hello ? -EPROTO : -hello.err;
  }
  facts_ = hello.facts;
  return 0;
}

int NsSockets::Refill(int family, int type, SockKind kind) {
  std::vector<int>& pool = Pool(family, type, kind);
  Request rq{family, type, kind == SockKind::Transparent};
  int fds[podnet::kMaxPassedFds];
  int n;
  if (chan_ >= 0) {
    if (send(chan_, &rq, sizeof rq, MSG_NOSIGNAL) != sizeof rq) return -errno;
    int err = 0;
    n = podnet::RecvFds(chan_, &err, fds);
    if (n < 0) return n == -ECONNRESET ? -EPIPE : n;
    if (n == 0) return err ? -err : -EIO;
  } else {
    Batch b{rq, {}};
    n = podnet::RunInNetns(netns_, BatchThunk, &b);
    if (n < 0) return n;
    memcpy(fds, b.fds, sizeof(int) * n);
  }
  pool.insert(pool.end(), fds, fds + n);
  return 0;
}

int NsSockets::Take(int family, int type, SockKind kind) {
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
