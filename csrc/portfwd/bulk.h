// Bulk connections, relayed by two threads with blocking splice, one per
// direction. Measured here (one iperf3 stream held at 4 Gbit/s, reno on the
// container leg) the forwarder's CPU per byte fell from 0.26-0.32 to
// 0.15-0.17 s/GB, the same as the plain C relay (scripts/bench/portfwd-splice.c),
// and the client's own CPU fell too. Each wake-up is one read and one write
// instead of epoll_wait, reads and writes until EAGAIN; a blocking
// tcp_splice_read also keeps taking what arrives while it holds the socket.
#pragma once

#include "tcp.h"

namespace pfwd {

// Hands the connection (client and upstream sockets, both pipes, removed from
// `epoll` by this call) to a new thread pair; the last thread out closes
// everything and decrements g_load[loop]. false when no threads can be had
// (at most kMaxBulk pairs): the caller keeps it, unchanged.
bool HandOffBulk(int epoll, int loop, int client, int upstream, const Dir& up, const Dir& down);

}  // namespace pfwd
