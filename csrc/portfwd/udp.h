// UDP relaying, on the main thread's loop: one flow per client address (and
// the host address it sent to), each a connected socket in the namespace.
// Flows are bounded: at most `max_flows` (the least recently used goes first
// when a new client comes) and none idle for longer than `idle_ms`, as a NAT's
// conntrack table is (nf_conntrack_udp_timeout). The server sees the
// namespace's own address: see README for why UDP keeps no client address.
#pragma once

#include <stddef.h>

namespace pfwd {

class Upstream;

struct UdpLimits {
  size_t max_flows = 1024;
  int idle_ms = 60000;
};

void InitUdp(Upstream* up, const UdpLimits& limits);
// Relays datagrams arriving on `fd` (bound) to container port `cport`: 0 or -errno.
int WatchUdpListener(int fd, int cport);
// Ends flows idle for longer than the limit; returns ms until the next call is due (-1: no flows).
int SweepUdp();

}  // namespace pfwd
