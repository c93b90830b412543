// TCP relaying. Every loop watches the TCP listeners with EPOLLEXCLUSIVE; the
// loop that accepts keeps the connection unless another serves fewer (then it
// posts the fd to that loop's inbox), so streams spread over cores and a lone
// short connection is not handed between threads. Bytes move with splice()
// through a bounded pipe per direction: a slow reader stops reads from its
// peer (memory stays at the pipe size). A connection that turns out to be
// bulk (fills a pipe in one move) leaves the loop for a thread pair (bulk.h).
#pragma once

#include <stddef.h>
#include <sys/socket.h>

namespace pfwd {

class Upstream;

// Pipes start at the default size (64 KiB) and grow to kBulkPipe once a
// connection fills one in a single splice: bulk streams get fewer, larger
// moves (less CPU per byte) while short connections stay small. Pipe pages are
// charged to the user (fs/pipe-user-pages-soft): an unprivileged forwarder with
// large pipes everywhere would shrink every other pipe of that user.
constexpr int kBulkPipe = 1024 * 1024;

// One direction: src -> pipe -> dst.
struct Dir {
  int pr = -1, pw = -1;
  size_t pending = 0;  // bytes in the pipe
  int size = 0;        // pipe capacity
  bool done = false;   // EOF seen and forwarded as shutdown(SHUT_WR)

  bool bulk() const { return size >= kBulkPipe; }
  // After a read of n bytes into the pipe: a read that filled it marks a bulk stream.
  void Filled(size_t n);
};

// Sets up each loop's inbox (call after InitLoops): 0 or -errno.
int InitTcp(Upstream* up);
// Listens on `fd` (bound, listening) for connections to container port `cport`, in every loop: 0 or -errno.
int WatchTcpListener(int fd, int cport);

}  // namespace pfwd
