// How link statistics reach a network namespace: a NETLINK_ROUTE socket made
// inside it, one per namespace, by the core's one mechanism for each case:
// a thread that joins the namespaces of a batch in turn (nsocket.h), or, for
// an unprivileged caller and a namespace owned by another user namespace, a
// forked child that joins both (userns_socket.h).
#pragma once

#include <string>
#include <vector>

#include "common.h"

namespace podnet {

struct NetlinkSocketJob {
  std::string path;
  Fd nsfd;  // the namespace, opened and checked (OpenNetns)
  Fd sock;  // out: the socket
  bool failed = false;
  NativeError error;
};

// Fills `sock` (or `failed` and `error`) of every job not failed already.
// Runs on a libuv pool thread; the pool thread itself never changes namespace.
void OpenNetlinkSockets(std::vector<NetlinkSocketJob>& jobs);

}  // namespace podnet
