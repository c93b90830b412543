// podnet-portfwd: the port forwarder process (podnet's rootlessport).
//
// Configuration arrives as JSON on stdin:
//   {"netns": path, "userns": path|"", "target": ip|"",
//    "keepClientAddress": bool (default true), "udpMaxFlows": n, "udpIdleMs": n,
//    "listen": [{"proto": "tcp"|"udp", "ip": host ip, "port": n, "cport": n}, ...]}
// fd 3 is the exit fd: the forwarder ends when it reads EOF (its owner stopped
// it or died). fd 4 is the ready fd: "1" is written once every listener is
// bound. On a failure before that, one line "CODE: message" goes to stdout and
// the process exits 1, so no listener stays open.
//
// The parts: upstream.h (the namespace side of a connection, client address
// kept), tcp.h and bulk.h (TCP relaying), udp.h (UDP flows), loop.h (the
// event loops), sandbox_sockets.h and rtnl.h (sockets and routing inside the namespace).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "../core/errno_name.h"
#include "addr.h"
#include "json.h"
#include "loop.h"
#include "tcp.h"
#include "udp.h"
#include "upstream.h"

namespace pfwd {
namespace {

constexpr int kExitFd = 3;
constexpr int kReadyFd = 4;

Upstream g_upstream;

[[noreturn]] void Fail(const std::string& code, const std::string& msg) {
  dprintf(1, "%s: %s\n", code.c_str(), msg.c_str());
  _exit(1);
}
// `rc` is -errno.
[[noreturn]] void FailErrno(int rc, const std::string& what) {
  Fail(podnet::ErrnoName(-rc), what + ": " + strerror(-rc));
}

// The exit fd became readable: EOF, the owner stopped the forwarder or died.
struct OwnerGone : Handler {
  void OnEvent(uint32_t) override { _exit(0); }
};

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return s;
    s.append(buf, n);
  }
}

// A bound (and for TCP listening) socket on the host, or the process fails naming it.
int Listen(const std::string& proto, const std::string& ip, int port) {
  std::string name = Describe(proto, ip, port);
  sockaddr_storage ss;
  if (!ParseAddr(ip, port, &ss)) Fail("ERR_INVALID_ARGUMENT", "cannot listen on " + name + ": bad address");
  bool tcp = proto == "tcp";
  int fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) FailErrno(-errno, "cannot listen on " + name + ": socket");
  int one = 1;
  if (tcp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (!tcp && ss.ss_family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  if (!tcp && ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), SockLen(ss)) != 0) FailErrno(-errno, "cannot listen on " + name);
  if (tcp && listen(fd, 4096) != 0) FailErrno(-errno, "cannot listen on " + name);
  if (tcp && IsLoopback(ss)) LocalCongestionControl(fd);
  return fd;
}

}  // namespace

int Main() {
  signal(SIGPIPE, SIG_IGN);
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;  // each TCP connection holds six fds
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (fcntl(kExitFd, F_GETFD) < 0 || fcntl(kReadyFd, F_GETFD) < 0)
    Fail("ERR_INVALID_ARGUMENT", "fd 3 (exit) and fd 4 (ready) must be open");
  fcntl(kExitFd, F_SETFD, FD_CLOEXEC);
  fcntl(kReadyFd, F_SETFD, FD_CLOEXEC);

  Json cfg;
  std::string err;
  if (!ParseJson(ReadAll(0), &cfg, &err) || cfg.kind != Json::Obj)
    Fail("ERR_INVALID_ARGUMENT", "config on stdin: " + (err.empty() ? "not an object" : err));
  const Json* listen = cfg.get("listen");
  if (!listen || listen->kind != Json::Arr || listen->arr.empty())
    Fail("ERR_INVALID_ARGUMENT", "config on stdin: 'listen' must be a non-empty array");
  const Json* keep = cfg.get("keepClientAddress");
  UdpLimits udp;
  long maxFlows = cfg.getInt("udpMaxFlows", static_cast<long>(udp.max_flows));
  long idleMs = cfg.getInt("udpIdleMs", udp.idle_ms);
  if ((keep && keep->kind != Json::Bool) || maxFlows < 1 || idleMs < 1 || idleMs > 86400000)
    Fail("ERR_INVALID_ARGUMENT", "config on stdin: bad keepClientAddress, udpMaxFlows or udpIdleMs");
  udp.max_flows = maxFlows;
  udp.idle_ms = idleMs;

  // Still single-threaded here, as joining a user namespace requires (sandbox_sockets.h).
  UpstreamConfig up{cfg.getStr("netns"), cfg.getStr("userns"), cfg.getStr("target"), !keep || keep->b};
  std::string code, msg;
  if (g_upstream.Open(up, &code, &msg) < 0) Fail(code, msg);

  int rc = InitLoops();
  if (rc == 0) rc = InitTcp(&g_upstream);
  if (rc < 0) FailErrno(rc, "epoll_create1/eventfd");
  InitUdp(&g_upstream, udp);
  for (const Json& l : listen->arr) {
    std::string proto = l.getStr("proto");
    int port = l.getInt("port"), cport = l.getInt("cport");
    if ((proto != "tcp" && proto != "udp") || port < 1 || port > 65535 || cport < 1 || cport > 65535)
      Fail("ERR_INVALID_ARGUMENT", "config on stdin: bad listen entry");
    int fd = Listen(proto, l.getStr("ip"), port);
    rc = proto == "tcp" ? WatchTcpListener(fd, cport) : WatchUdpListener(fd, cport);
    if (rc < 0) FailErrno(rc, "epoll_ctl");
  }
  OwnerGone ownerGone;
  if (!Watch(ThisEpoll(), kExitFd, &ownerGone, EPOLLIN)) FailErrno(-errno, "epoll_ctl");
  if ((rc = StartLoopThreads()) < 0) FailErrno(rc, "pthread_create");
  if (write(kReadyFd, "1", 1) != 1) FailErrno(-errno, "write ready fd");
  close(kReadyFd);

  // Loop 0 also relays UDP: it wakes when the oldest flow falls idle.
  for (int next = -1;;) {
    if ((rc = RunOnce(next)) < 0) FailErrno(rc, "epoll_wait");
    next = SweepUdp();
  }
}

}  // namespace pfwd

int main() { return pfwd::Main(); }
