// Fresh sockets that belong to the container's network namespace. A socket
// stays in the namespace it was created in, so the forwarder creates them
// there in batches and connects them from its own (host) namespace.
//  - Rootful: a short-lived thread joins the namespace, creates a batch, exits;
//    the main thread never leaves the host namespace.
//  - Unprivileged (user namespace given): joining a user namespace needs a
//    single-threaded process, so a forked helper joins user+net namespaces once
//    and passes sockets back over a Unix socket with SCM_RIGHTS (as rootlesskit's
//    builtin driver does, minus the per-connection round trip).
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

namespace pfwd {

class NsSockets {
 public:
  // Opens the namespace files (and forks the helper when `userns` is set).
  // On failure returns false with `*code` an errno name and `*msg` the reason.
  bool Open(const std::string& netns, const std::string& userns, std::string* code, std::string* msg);
  // A non-blocking socket of `family`/`type` in the namespace, or -1 with errno set.
  int Take(int family, int type);
  // The namespace's first global address (IPv4 preferred), for the connect target.
  bool FirstGlobal(sockaddr_storage* out);
  pid_t helper_pid() const { return helper_; }

 private:
  bool Refill(int family, int type);
  std::vector<int>& Pool(int family, int type) { return pools_[(family == AF_INET6 ? 2 : 0) + (type == SOCK_DGRAM)]; }

  int netns_ = -1;
  int userns_ = -1;
  int chan_ = -1;  // to the helper process (unprivileged mode)
  pid_t helper_ = -1;
  bool found_ = false;
  sockaddr_storage found_addr_{};
  std::vector<int> pools_[4];
};

// Creates `n` non-blocking sockets in the calling thread's namespace; returns how many.
int MakeSockets(int family, int type, int n, int* out);
// First global address of the calling thread's namespace (IPv4 preferred).
bool FindGlobalAddress(sockaddr_storage* out);

}  // namespace pfwd
