// Link statistics for runtimes that poll many sandboxes: one NETLINK_ROUTE
// socket per network namespace, made once (stats_sockets.h) and kept, so a
// poll is one RTM_GETLINK per namespace from the calling pool thread, with no
// setns at all.
//
// Cache: namespace identity (nsfs dev/ino) -> socket, plus the paths it was
// reached by. A cached socket pins its namespace (the kernel keeps a namespace
// alive while a socket in it exists), so its inode cannot be reused by another
// namespace meanwhile; each read re-stats the path, and a periodic sweep drops
// sockets whose paths are gone, so a removed namespace is released. Explicit
// release lets a runtime drop a socket at teardown at once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../core/link_stats.h"
#include "common.h"

namespace podnet {

struct StatsRequest {
  std::string path;
  std::string ifname;  // empty: every non-loopback link
};

struct StatsOutcome {
  bool failed = false;
  NativeError error;
  std::vector<LinkCounters> links;
};

// Reads every request (batches run one at a time: a socket has one reader).
void ReadStatsBatch(const std::vector<StatsRequest>& reqs, std::vector<StatsOutcome>& outs);

// Closes the socket of the namespace `path` names (or was cached under), or
// every socket when `path` is null: how many were closed.
size_t ReleaseStatsSockets(const std::string* path);

// {sockets, paths} in the cache.
std::pair<size_t, size_t> StatsCacheCounts();

}  // namespace podnet
