#include "stats_cache.h"

#include <sys/stat.h>

#include <chrono>
#include <map>
#include <mutex>
#include <set>

#include "stats_sockets.h"

namespace podnet {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kSweepEvery = std::chrono::seconds(1);

struct Key {
  dev_t dev;
  ino_t ino;
  bool operator<(const Key& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
  bool operator==(const Key& o) const { return dev == o.dev && ino == o.ino; }
};

struct Cached {
  Fd sock;
  std::set<std::string> paths;
  Clock::time_point checked;
};

// One batch at a time: a netlink socket must not be shared by two readers.
std::mutex g_mu;
std::map<Key, Cached> g_cache;
std::map<std::string, Key> g_byPath;

void FreeSocket(std::map<Key, Cached>::iterator it) {
  for (const auto& p : it->second.paths) g_byPath.erase(p);
  g_cache.erase(it);  // closes the socket, unpins the namespace
}

// Forgets that `path` leads to its cached socket; frees the socket when no path is left.
void Unbind(const std::string& path) {
  auto bp = g_byPath.find(path);
  if (bp == g_byPath.end()) return;
  auto it = g_cache.find(bp->second);
  g_byPath.erase(bp);
  if (it == g_cache.end()) return;
  it->second.paths.erase(path);
  if (it->second.paths.empty()) FreeSocket(it);
}

void Bind(const std::string& path, const Key& key, Clock::time_point now) {
  auto bp = g_byPath.find(path);
  if (bp != g_byPath.end() && !(bp->second == key)) Unbind(path);
  Cached& c = g_cache[key];
  c.paths.insert(path);
  c.checked = now;
  g_byPath[path] = key;
}

// Drops sockets none of whose paths still name their namespace (checked at most once a second).
void Sweep(Clock::time_point now) {
  for (auto it = g_cache.begin(); it != g_cache.end();) {
    auto cur = it++;
    if (now - cur->second.checked < kSweepEvery) continue;
    cur->second.checked = now;
    std::vector<std::string> gone;
    for (const auto& p : cur->second.paths) {
      struct stat st;
      if (stat(p.c_str(), &st) != 0 || !(Key{st.st_dev, st.st_ino} == cur->first)) gone.push_back(p);
    }
    if (gone.size() == cur->second.paths.size()) {
      FreeSocket(cur);
    } else {
      for (const auto& p : gone) Unbind(p);
    }
  }
}

// Reads one request with its namespace's socket; false when the socket must be dropped.
bool Query(int sock, const StatsRequest& r, StatsOutcome* out) {
  bool broken = false;
  int rc = ReadLinkStats(sock, r.ifname, &out->links, &broken);
  if (rc == -ENODEV && !broken) {
    out->failed = true;
    out->error.code = "ERR_NO_SUCH_INTERFACE";
    out->error.message = "no interface '" + r.ifname + "' in network namespace '" + r.path + "'";
    out->error.path = r.path;
  } else if (rc < 0) {
    out->failed = true;
    out->error = ErrnoError(-rc, "RTM_GETLINK", r.path);
    out->links.clear();
  } else if (!r.ifname.empty() && out->links.size() != 1) {
    out->failed = true;
    out->error = ErrnoError(EPROTO, "RTM_GETLINK", r.path);
    out->links.clear();
  }
  return !broken;
}

}  // namespace

void ReadStatsBatch(const std::vector<StatsRequest>& reqs, std::vector<StatsOutcome>& outs) {
  std::lock_guard<std::mutex> guard(g_mu);
  const auto now = Clock::now();
  outs.assign(reqs.size(), StatsOutcome());
  std::vector<Key> keys(reqs.size());
  std::vector<bool> ready(reqs.size(), false);
  std::vector<NetlinkSocketJob> pending;
  std::vector<Key> pendingKeys;
  std::map<Key, size_t> pendingByKey;
  std::vector<std::pair<size_t, size_t>> waits;  // request -> pending index

  for (size_t i = 0; i < reqs.size(); i++) {
    const std::string& path = reqs[i].path;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      outs[i].failed = true;
      outs[i].error = ErrnoError(errno, "stat", path);
      Unbind(path);
      continue;
    }
    Key key{st.st_dev, st.st_ino};
    if (g_cache.count(key)) {
      Bind(path, key, now);
      keys[i] = key;
      ready[i] = true;
      continue;
    }
    Unbind(path);
    auto pk = pendingByKey.find(key);
    if (pk != pendingByKey.end()) {
      waits.emplace_back(i, pk->second);
      continue;
    }
    NetlinkSocketJob job;
    job.path = path;
    Key opened = key;
    try {
      struct stat nst;
      job.nsfd = OpenNetns(path, &nst);
      opened = Key{nst.st_dev, nst.st_ino};
    } catch (const NativeError& e) {
      job.failed = true;
      job.error = e;
    }
    pendingByKey[key] = pending.size();
    waits.emplace_back(i, pending.size());
    pending.push_back(std::move(job));
    pendingKeys.push_back(opened);
  }

  if (!pending.empty()) {
    OpenNetlinkSockets(pending);
    for (size_t k = 0; k < pending.size(); k++) {
      NetlinkSocketJob& job = pending[k];
      job.nsfd = Fd();
      if (job.failed) continue;
      auto it = g_cache.find(pendingKeys[k]);
      if (it == g_cache.end()) g_cache[pendingKeys[k]].sock = std::move(job.sock);
      // else: the path moved to a cached namespace meanwhile; this socket closes with the job
    }
    for (auto [i, pi] : waits) {
      NetlinkSocketJob& job = pending[pi];
      if (job.failed) {
        outs[i].failed = true;
        outs[i].error = job.error;
        outs[i].error.path = reqs[i].path;
        continue;
      }
      Bind(reqs[i].path, pendingKeys[pi], now);
      keys[i] = pendingKeys[pi];
      ready[i] = true;
    }
  }

  for (size_t i = 0; i < reqs.size(); i++) {
    if (!ready[i]) continue;
    auto it = g_cache.find(keys[i]);
    if (it == g_cache.end()) {  // dropped after an error earlier in this batch; the entry already failed
      outs[i].failed = true;
      outs[i].error.code = "ERR_NETLINK";
      outs[i].error.message = "netlink socket for '" + reqs[i].path + "' failed earlier in this batch";
      outs[i].error.path = reqs[i].path;
      continue;
    }
    if (!Query(it->second.sock.get(), reqs[i], &outs[i])) FreeSocket(it);
  }
  Sweep(now);
}

size_t ReleaseStatsSockets(const std::string* path) {
  std::lock_guard<std::mutex> guard(g_mu);
  size_t before = g_cache.size();
  if (!path) {
    g_cache.clear();
    g_byPath.clear();
  } else {
    // The path itself, or whatever namespace it names now.
    Unbind(*path);
    struct stat st;
    if (stat(path->c_str(), &st) == 0) {
      auto it = g_cache.find(Key{st.st_dev, st.st_ino});
      if (it != g_cache.end()) FreeSocket(it);
    }
  }
  return before - g_cache.size();
}

std::pair<size_t, size_t> StatsCacheCounts() {
  std::lock_guard<std::mutex> guard(g_mu);
  return {g_cache.size(), g_byPath.size()};
}

}  // namespace podnet
