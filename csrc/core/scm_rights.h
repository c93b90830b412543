// Passing file descriptors between processes over a Unix socket (SCM_RIGHTS,
// unix(7)), with one int of payload: how a forked child that joined a user
// namespace hands sockets made there back to its multithreaded parent.
#pragma once

namespace podnet {

// At most this many fds per message.
constexpr int kMaxPassedFds = 64;

// Sends `payload` and `n` fds (0 <= n <= kMaxPassedFds): 0 or -errno.
// Async-signal-safe (sendmsg only), so a forked child may call it.
int SendFds(int chan, int payload, const int* fds, int n);

// Receives what SendFds sent into `fds` (room for kMaxPassedFds), the fds
// marked close-on-exec: the number of fds, or -errno (-ECONNRESET when the
// peer closed the channel).
int RecvFds(int chan, int* payload, int* fds);

}  // namespace podnet
