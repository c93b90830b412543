// The container side of every forwarded connection: where it goes (the
// target address) and the socket in the namespace that goes there.
//
// With the client's address kept (the default), a TCP connection is dialled
// from inside the namespace by a transparent socket bound to the client's
// address and port (port 0 when that pair is taken), as rootlesskit v3's
// builtin driver does (rootless-containers/rootlesskit#565): the server sees
// the real client. Its replies go to an address that is not the namespace's,
// so the socket's fwmark (inherited by the accepted side, tcp_fwmark_accept)
// selects a table whose `local default` route delivers them back to it
// (rtnl.h). A loopback client is shown as the host side of the namespace's
// default route, never as a loopback address (which a server would trust as
// itself: CVE-2021-20199). Without a gateway, for a family other than the
// target's, or when the target is not one of the namespace's own addresses,
// the connection comes from the namespace's own address, as with the option off.
#pragma once

#include <sys/socket.h>

#include <mutex>
#include <string>

#include "sandbox_sockets.h"

namespace pfwd {

struct UpstreamConfig {
  std::string netns, userns;
  std::string target;  // "" for the namespace's first global address
  bool keep_client_address = true;
};

class Upstream {
 public:
  // 0, or -errno with `*code`/`*msg` set for the forwarder's error line.
  int Open(const UpstreamConfig& cfg, std::string* code, std::string* msg);
  // A non-blocking socket in the namespace, connect() started towards the
  // target's `port` on behalf of the client `peer` (null for none): an fd or -errno.
  int Dial(int type, const sockaddr_storage* peer, int port);
  // Whether the target is the namespace's own address (its leg stays inside this host).
  bool target_local() const { return ns_.facts().target_local; }
  // Whether TCP connections keep the client's address.
  bool transparent() const { return transparent_; }

 private:
  int BindClient(int fd, const sockaddr_storage& peer);

  SandboxSockets ns_;
  std::mutex mu_;  // ns_'s pools are shared by the loops
  sockaddr_storage target_{};
  bool transparent_ = false;
};

}  // namespace pfwd
