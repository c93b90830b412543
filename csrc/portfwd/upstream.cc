#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/errno_name.h"
#include "addr.h"

namespace pfwd {

int Upstream::Open(const UpstreamConfig& cfg, std::string* code, std::string* msg) {
  bool given = !cfg.target.empty();
  if (given && !ParseAddr(cfg.target, 0, &target_)) {
    *code = "ERR_INVALID_ARGUMENT";
    *msg = "bad target address '" + cfg.target + "'";
    return -EINVAL;
  }
  std::string what;
  int rc = ns_.Open(cfg.netns, cfg.userns, given ? &target_ : nullptr, cfg.keep_client_address, &what);
  if (rc < 0) {
    *code = podnet::ErrnoName(-rc);
    *msg = what + ": " + strerror(-rc);
    return rc;
  }
  const NsFacts& f = ns_.facts();
  if (!given) {
    if (!f.has_global) {
      *code = "ERR_PORTFWD_NO_ADDRESS";
      *msg = "network namespace " + cfg.netns + " has no global address to forward to";
      return -ENOENT;
    }
    target_ = f.global;
  }
  transparent_ = cfg.keep_client_address && f.target_local && f.routing_err == 0;
  if (cfg.keep_client_address && !transparent_) {
    dprintf(2, "podnet-portfwd: client addresses not kept: %s\n",
            !f.target_local ? "the target is not an address of the namespace"
                            : ("policy routing: " + std::string(strerror(f.routing_err))).c_str());
  }
  return 0;
}

// Binds a transparent socket to the address the server should see for `peer`:
// 0, or -errno (the caller then dials from the namespace's own address).
int Upstream::BindClient(int fd, const sockaddr_storage& peer) {
  sockaddr_storage src = peer;
  if (IsLoopback(peer)) {
    const NsFacts& f = ns_.facts();
    bool v6 = peer.ss_family == AF_INET6;
    if (!(v6 ? f.has_gw6 : f.has_gw4)) return -EADDRNOTAVAIL;
    src = v6 ? f.gw6 : f.gw4;
    SetPort(&src, 0);  // the loopback client's port means nothing on the gateway's address
  }
  socklen_t len = SockLen(src);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), len) == 0) return 0;
  // The client's port is taken in the namespace (a listener on it, a
  // connection in TIME_WAIT) or privileged there: any port will do.
  if (Port(src) == 0 || (errno != EADDRINUSE && errno != EACCES)) return -errno;
  SetPort(&src, 0);
  return bind(fd, reinterpret_cast<sockaddr*>(&src), len) == 0 ? 0 : -errno;
}

int Upstream::Dial(int type, const sockaddr_storage* peer, int port) {
  bool keep = transparent_ && type == SOCK_STREAM && peer && peer->ss_family == target_.ss_family;
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = ns_.Take(target_.ss_family, type, keep ? SockKind::Transparent : SockKind::Plain);
  }
  if (fd < 0) return fd;
  if (keep && BindClient(fd, *peer) < 0) {
    close(fd);  // a transparent socket that could not bind: dial as without the option
    std::lock_guard<std::mutex> lock(mu_);
    fd = ns_.Take(target_.ss_family, type, SockKind::Plain);
    if (fd < 0) return fd;
  }
  if (type == SOCK_STREAM && target_local()) LocalCongestionControl(fd);
  sockaddr_storage t = target_;
  SetPort(&t, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&t), SockLen(t)) != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

}  // namespace pfwd
