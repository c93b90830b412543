// Fresh sockets that belong to the container's network namespace. A socket
// stays in the namespace it was created in, so the forwarder creates them
// there in batches and binds and connects them from its own (host) namespace.
//  - Rootful: podnet::RunInNetns (csrc/core/nsocket.h), a thrown-away thread
//    that joins the namespace; no thread of the forwarder stays there.
//  - Unprivileged (user namespace given): joining a user namespace needs a
//    single-threaded process, so a forked helper joins user+net namespaces once
//    and passes sockets back with SCM_RIGHTS (csrc/core/scm_rights.h), as
//    rootlesskit's builtin driver does, minus the per-connection round trip.
// Transparent sockets (IP_TRANSPARENT and the fwmark set) can only be made by
// a caller with CAP_NET_ADMIN over the namespace: root, or the helper inside
// the user namespace. The forwarder binds them to the client's address.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

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

class NsSockets {
 public:
  // Opens the namespace (forking the helper when `userns` is set) and learns
  // the facts. `target` (or null for the first global address) is checked
  // for being local; with `transparent`, the policy routing is set up.
  // 0, or -errno with `*what` naming the step that failed.
  int Open(const std::string& netns, const std::string& userns, const sockaddr_storage* target, bool transparent,
           std::string* what);
  // A non-blocking socket of `family`/`type` in the namespace, or -errno.
  int Take(int family, int type, SockKind kind);
  const NsFacts& facts() const { return facts_; }
  pid_t helper_pid() const { return helper_; }

 private:
  int Refill(int family, int type, SockKind kind);
  std::vector<int>& Pool(int family, int type, SockKind kind) {
    return pools_[(family == AF_INET6 ? 3 : 0) + (kind == SockKind::Transparent ? 2 : type == SOCK_DGRAM)];
  }

  int netns_ = -1;
  int chan_ = -1;  // to the helper process (unprivileged mode)
  pid_t helper_ = -1;
  NsFacts facts_;
  std::vector<int> pools_[6];
};

}  // namespace pfwd
