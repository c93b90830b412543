// Sockets inside a network namespace owned by another user namespace, for an
// unprivileged caller. setns(2) into a user namespace is refused to a
// multithreaded process (EINVAL), so a forked single-threaded child joins the
// user namespace, then the network namespace, and passes the sockets it makes
// back over a Unix socket (scm_rights.h), as rootlesskit's builtin port driver
// does. The rootful case needs no process: see nsocket.h.
//
// The child keeps only its end of the channel (every other fd it inherited is
// closed), runs only async-signal-safe code, and exits when the channel
// closes: when the owner calls Stop, or dies. So one child can serve batches
// for as long as its owner lives (a port forwarder), or a single request
// (SocketsInUserns). Anything else about the namespace (its addresses, links)
// is read by the caller through a NETLINK_ROUTE socket made this way.
#pragma once

#include <sys/types.h>

namespace podnet {

class UsernsSocketMaker {
 public:
  UsernsSocketMaker() = default;
  ~UsernsSocketMaker() { Stop(); }
  UsernsSocketMaker(const UsernsSocketMaker&) = delete;
  UsernsSocketMaker& operator=(const UsernsSocketMaker&) = delete;

  // Forks the child, which joins `userns_fd` then `netns_fd`: 0 once it has
  // joined both, or -errno (failed_step() then names the step that failed).
  // The fds stay the caller's.
  int Start(int userns_fd, int netns_fd);

  // Up to kMaxPassedFds sockets socket(domain, type | SOCK_CLOEXEC, protocol)
  // made by the child into `out`: how many (> 0), or -errno (of socket(2) in
  // the child, or of the channel: -ECONNRESET when the child is gone).
  int Make(int domain, int type, int protocol, int n, int* out);

  // Closes the channel, so the child exits, and reaps it. Idempotent.
  void Stop();

  pid_t pid() const { return pid_; }
  // The step that made Start or Make fail: "setns(CLONE_NEWUSER)",
  // "setns(CLONE_NEWNET)", "socket", "fork", "socketpair" or "recvmsg".
  const char* failed_step() const { return failed_step_; }

 private:
  int chan_ = -1;
  pid_t pid_ = -1;
  const char* failed_step_ = "";
};

// One request: `n` (<= kMaxPassedFds) sockets made in a child that joins
// `userns_fd` and `netns_fd` and exits. The count made (> 0) or -errno; if
// `failed_step` is given it gets the step that failed.
int SocketsInUserns(int userns_fd, int netns_fd, int domain, int type, int n, int* out, int protocol = 0,
                    const char** failed_step = nullptr);

}  // namespace podnet
