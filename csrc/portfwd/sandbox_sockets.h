// Fresh sockets that belong to the container's network namespace. A socket
// stays in the namespace it was created in, so the forwarder creates them
// there in batches (podnet::RunInNetns, csrc/core/nsocket.h: a thrown-away
// thread joins the namespace; no thread of the forwarder stays there) and
// binds and connects them from its own (host) namespace.
//
// Unprivileged (a user namespace given): the forwarder process itself joins
// the user namespace that owns the network namespace, once, while it is still
// single-threaded (setns(2) refuses a multithreaded caller). Its host
// identity stays (same kuid: its owner still signals it, host ports below
// ip_unprivileged_port_start stay refused) and it gains CAP_NET_ADMIN and
// CAP_SYS_ADMIN over the sandbox's namespace only. So the rootful mechanism
// serves both, with no second process, no fd passing and no per-batch round
// trip, and transparent sockets (IP_TRANSPARENT and SO_MARK, whose capability
// is checked at setsockopt) and the policy routing are made the same way.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

namespace pfwd {

// What the namespace side found once, when the forwarder started.
struct NsFacts {
  bool has_global = false;
  sockaddr_storage global{};  // first global address (IPv4 preferred)
  bool has_gw4 = false, has_gw6 = false;
  sockaddr_storage gw4{}, gw6{};  // default gateways: the host side, as the container sees it
  int target_local = 0;           // 1 if the target is one of the namespace's own addresses
  int routing_err = 0;            // 0, or the errno that stopped the policy routing set-up
};

enum class SockKind { Plain, Transparent };

class SandboxSockets {
 public:
  // Joins `userns` if set (call while single-threaded), opens the namespace
  // and learns the facts. `target` (or null for the first global address) is checked
  // for being local; with `transparent`, the policy routing is set up.
  // 0, or -errno with `*what` naming the step that failed.
  int Open(const std::string& netns, const std::string& userns, const sockaddr_storage* target, bool transparent,
           std::string* what);
  // A non-blocking socket of `family`/`type` in the namespace, or -errno.
  int Take(int family, int type, SockKind kind);
  const NsFacts& facts() const { return facts_; }

 private:
  int Refill(int family, int type, SockKind kind);
  std::vector<int>& Pool(int family, int type, SockKind kind) {
    return pools_[(family == AF_INET6 ? 3 : 0) + (kind == SockKind::Transparent ? 2 : type == SOCK_DGRAM)];
  }

  int netns_ = -1;
  NsFacts facts_;
  std::vector<int> pools_[6];
};

}  // namespace pfwd
