// Link counters read over rtnetlink (rtnetlink(7)) from a NETLINK_ROUTE
// socket, which answers for the network namespace it was made in (see
// nsocket.h and userns_socket.h). One RTM_GETLINK for a link by name, or a
// dump of every link; only IFLA_IFNAME and IFLA_STATS64 are parsed.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

namespace podnet {

// The counters of struct rtnl_link_stats64 (linux/if_link.h), in its order.
constexpr size_t kNumLinkCounters = 24;

struct LinkCounters {
  std::string name;
  uint64_t counters[kNumLinkCounters];
};

// Appends link `ifname` (or, for an empty name, every link but loopback) to
// `out`: 0, or -errno as the kernel answered (-ENODEV: no such link), or
// -errno of the exchange itself; `*socket_broken` is set when the socket can
// no longer be trusted (a failed send or receive, a truncated or malformed
// reply) and must be closed.
int ReadLinkStats(int nlfd, const std::string& ifname, std::vector<LinkCounters>* out, bool* socket_broken);

}  // namespace podnet
