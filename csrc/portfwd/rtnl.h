// The few rtnetlink(7) requests the forwarder makes inside the container's
// namespace: its addresses, its default gateways, and the policy routing that
// transparent dials need. Raw netlink on stack buffers; every function
// returns >= 0 or -errno.
#pragma once

#include <sys/socket.h>

namespace pfwd {

// fwmark of transparent upstream sockets, and the routing table (and rule
// priority, before the main table's 32766) that delivers marked replies
// locally. Distinct from rootlesskit's 100/100 so both can share a namespace.
constexpr unsigned kTransparentMark = 0x504e;
constexpr unsigned kTransparentTable = 0x504e;
constexpr unsigned kTransparentRulePriority = 0x504e;

// A NETLINK_ROUTE socket in the calling thread's namespace: an fd or -errno.
int RtnlOpen();
// The first address of global scope (IPv4 preferred): 0, or -ENOENT if none.
int FirstGlobalAddress(int nl, sockaddr_storage* out);
// The gateway of the main table's default route for `family`: 0, or -ENOENT.
int DefaultGateway(int nl, int family, sockaddr_storage* out);
// `ip rule add fwmark M lookup T priority P` and `ip route add local default
// dev lo table T` for IPv4 and IPv6 (present already counts as done; IPv6 is
// skipped where it is disabled), and net.ipv4.tcp_fwmark_accept=1: 0 or -errno.
int SetUpTransparentRouting(int nl);

}  // namespace pfwd
