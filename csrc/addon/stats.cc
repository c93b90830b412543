// Link statistics read with libnl inside network namespaces, for runtimes that
// poll many sandboxes. A netlink socket stays bound to the namespace it was
// created in, so each namespace is entered once (on a short-lived thread of
// its own) only to create its socket; later reads use the cached socket from
// the calling pool thread without any setns.
//
// Cache: namespace identity (nsfs dev/ino) -> socket, plus the paths it was
// reached by. A cached socket pins its namespace (the kernel keeps a namespace
// alive while a socket in it exists), so its inode cannot be reused by another
// namespace meanwhile; each read re-stats the path, and a periodic sweep drops
// sockets whose paths are gone, so a removed namespace is released. Explicit
// release (statsRelease) lets a runtime drop a socket at teardown at once.
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "common.h"
#include "nsthread.h"

namespace podnet {
namespace {

using Clock = std::chrono::steady_clock;

// The counters netlink reports per link (struct rtnl_link_stats64), in the
// order CopyCounters writes them; lib/stats.ts names them in the same order.
constexpr size_t kNumCounters = 24;

struct Key {
  dev_t dev;
  ino_t ino;
  bool operator<(const Key& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
  bool operator==(const Key& o) const { return dev == o.dev && ino == o.ino; }
};

struct Cached {
  nl_sock* sk = nullptr;
  std::set<std::string> paths;
  Clock::time_point checked;
};

struct Link {
  std::string name;
  uint64_t counters[kNumCounters];
};

struct Request {
  std::string path;
  std::string ifname;  // empty: every non-loopback link
};

struct Outcome {
  bool failed = false;
  NativeError error;
  std::vector<Link> links;
};

// One batch at a time: a netlink socket must not be shared by two readers.
std::mutex g_mu;
std::map<Key, Cached> g_cache;
std::map<std::string, Key> g_byPath;
constexpr auto kSweepEvery = std::chrono::seconds(1);

void FreeSocket(std::map<Key, Cached>::iterator it) {
  for (const auto& p : it->second.paths) g_byPath.erase(p);
  nl_socket_free(it->second.sk);  // closes the fd, unpins the namespace
  g_cache.erase(it);
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

NativeError NlError(int err, const std::string& what, const std::string& path) {
  NativeError e;
  e.code = "ERR_NETLINK";
  e.message = what + ": " + nl_geterror(err) + " (namespace '" + path + "')";
  e.path = path;
  return e;
}


// For an unprivileged caller: a namespace owned by a user namespace cannot be
// joined by this (multithreaded) process. A forked child (single-threaded,
// only syscalls until _exit) joins the owning user namespace, then the network
// namespace, opens the netlink socket and passes it back over a socketpair.
int SocketViaChild(int nsfd, const std::string& path) {
  Fd userns(ioctl(nsfd, NS_GET_USERNS));
  if (!userns) ThrowErrno("ioctl(NS_GET_USERNS)", path);
  // Owned by our own user namespace: joining it gives nothing more; we lack privilege.
  struct stat own, target;
  if (stat("/proc/self/ns/user", &own) == 0 && fstat(userns.get(), &target) == 0 && own.st_ino == target.st_ino &&
      own.st_dev == target.st_dev) {
    throw ErrnoError(EPERM, "setns", path);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) ThrowErrno("socketpair");
  Fd parentEnd(sv[0]), childEnd(sv[1]);
  // Everything the child touches is prepared before fork.
  int childErr = 0;
  struct iovec iov = {&childErr, sizeof(childErr)};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  struct sockaddr_nl local = {};
  local.nl_family = AF_NETLINK;
  const int userfd = userns.get(), child = childEnd.get();
  pid_t pid = fork();
  if (pid < 0) ThrowErrno("fork");
  if (pid == 0) {
    int s = -1;
    if (setns(userfd, CLONE_NEWUSER) != 0 || setns(nsfd, CLONE_NEWNET) != 0 ||
        (s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0 ||
        bind(s, reinterpret_cast<struct sockaddr*>(&local), sizeof(local)) != 0) {
      childErr = errno;
    } else {
      msg.msg_control = cbuf;
      msg.msg_controllen = sizeof(cbuf);
      struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      __builtin_memcpy(CMSG_DATA(cm), &s, sizeof(int));
    }
    _exit(sendmsg(child, &msg, MSG_NOSIGNAL) < 0 ? 1 : 0);
  }
  childEnd = Fd();
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof(cbuf);
  ssize_t n;
  do n = recvmsg(parentEnd.get(), &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  int recvErr = errno;
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
  if (n < 0) throw ErrnoError(recvErr, "recvmsg", path);
  if (n != sizeof(childErr)) ThrowCode("ERR_NATIVE", "namespace helper for '" + path + "' exited without a reply", path);
  if (childErr) throw ErrnoError(childErr, "setns", path);
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) ThrowCode("ERR_NATIVE", "namespace helper for '" + path + "' sent no socket", path);
  int fd;
  __builtin_memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  return fd;
}

nl_sock* WrapFd(int fd, const std::string& path) {
  nl_sock* sk = nl_socket_alloc();
  if (!sk) {
    close(fd);
    ThrowCode("ENOMEM", "nl_socket_alloc failed");
  }
  int err = nl_socket_set_fd(sk, NETLINK_ROUTE, fd);
  if (err < 0) {
    close(fd);
    nl_socket_free(sk);
    throw NlError(err, "nl_socket_set_fd", path);
  }
  return sk;
}

// Exchange reads the single reply of a GET; libnl would also ask for an ACK.
nl_sock* Tune(nl_sock* sk) {
  nl_socket_disable_auto_ack(sk);  // a GET's reply is its answer; an ACK would be a second read
  return sk;
}

struct Pending {
  std::string path;
  Fd nsfd;
  Key key{};
  nl_sock* sk = nullptr;
  bool failed = false;
  NativeError error;
};

// Creates the sockets of namespaces not yet cached, on the namespace thread,
// which joins each namespace in turn (never a pool thread).
void CreateSockets(std::vector<Pending>& pending) {
  std::vector<Pending*> needChild;
  OnNsThread([&] {
    // The namespace this thread is in needs no setns (and an unprivileged
    // caller can read its own namespace this way).
    struct stat self;
    Key here{};
    if (stat("/proc/thread-self/ns/net", &self) == 0) here = Key{self.st_dev, self.st_ino};
    for (auto& p : pending) {
      if (p.failed) continue;
      if (!(p.key == here)) {
        try {
          EnterNetns(p.nsfd.get(), p.path);
        } catch (const NativeError& e) {
          if (e.err == EPERM && geteuid() != 0) {
            needChild.push_back(&p);
          } else {
            p.failed = true;
            p.error = e;
          }
          continue;
        }
        here = p.key;
      }
      nl_sock* sk = nl_socket_alloc();
      int err = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
      if (err < 0) {
        if (sk) nl_socket_free(sk);
        p.failed = true;
        p.error = NlError(err, "nl_connect", p.path);
        continue;
      }
      p.sk = sk;
    }
  });
  for (auto& p : pending) if (p.sk) Tune(p.sk);
  for (Pending* p : needChild) {
    try {
      p->sk = Tune(WrapFd(SocketViaChild(p->nsfd.get(), p->path), p->path));
    } catch (const NativeError& e) {
      p->failed = true;
      p->error = e;
    }
  }
}

// Copies the counters of a struct rtnl_link_stats64 attribute (older kernels
// report fewer fields: missing ones stay zero).
void CopyCounters(nlattr* a, Link* out) {
  struct rtnl_link_stats64 st = {};
  memcpy(&st, nla_data(a), std::min<size_t>(nla_len(a), sizeof(st)));
  const uint64_t v[kNumCounters] = {
      st.rx_packets, st.tx_packets, st.rx_bytes, st.tx_bytes, st.rx_errors, st.tx_errors,
      st.rx_dropped, st.tx_dropped, st.multicast, st.collisions, st.rx_length_errors,
      st.rx_over_errors, st.rx_crc_errors, st.rx_frame_errors, st.rx_fifo_errors,
      st.rx_missed_errors, st.tx_aborted_errors, st.tx_carrier_errors, st.tx_fifo_errors,
      st.tx_heartbeat_errors, st.tx_window_errors, st.rx_compressed, st.tx_compressed,
      st.rx_nohandler,
  };
  memcpy(out->counters, v, sizeof(v));
}

// Sends `msg` (consumed) and reads the replies to it: RTM_NEWLINK messages go
// to `onLink`, until the single reply (or NLMSG_DONE for a dump). Returns 0 or
// a negative errno from the kernel, or throws for a transport failure. libnl
// builds and frames the messages; only the two attributes needed are parsed
// (rtnl_link's full parse costs several times the kernel's own work).
int Exchange(nl_sock* sk, nl_msg* msg, bool dump, const std::function<void(ifinfomsg*, nlattr**)>& onLink,
             const std::string& path) {
  int err = nl_send_auto(sk, msg);
  const uint32_t seq = nlmsg_hdr(msg)->nlmsg_seq;
  nlmsg_free(msg);
  if (err < 0) throw NlError(err, "send RTM_GETLINK", path);
  for (;;) {
    // Batches are serialized (g_mu), so one receive buffer serves them all.
    alignas(nlmsghdr) static unsigned char buf[32768];
    ssize_t n;
    do n = recv(nl_socket_get_fd(sk), buf, sizeof(buf), MSG_TRUNC); while (n < 0 && errno == EINTR);
    if (n < 0) throw ErrnoError(errno, "recv", path);
    if (n == 0 || static_cast<size_t>(n) > sizeof(buf)) throw NlError(-NLE_MSG_TRUNC, "receive RTM_NEWLINK", path);
    bool done = false;
    int result = 0;
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    for (int left = static_cast<int>(n); nlmsg_ok(h, left); h = nlmsg_next(h, &left)) {
      if (h->nlmsg_seq != seq) continue;  // a stale reply to an earlier, failed request
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
      } else if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(nlmsg_data(h));
        result = e->error;
        done = true;
      } else if (h->nlmsg_type == RTM_NEWLINK) {
        nlattr* tb[IFLA_MAX + 1];
        if (nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) == 0) {
          onLink(static_cast<ifinfomsg*>(nlmsg_data(h)), tb);
        }
        if (!dump) done = true;
      }
    }
    if (done) return result;
  }
}

void LinkFrom(nlattr** tb, Link* out) {
  out->name = tb[IFLA_IFNAME] ? nla_get_string(tb[IFLA_IFNAME]) : "";
  if (tb[IFLA_STATS64]) {
    CopyCounters(tb[IFLA_STATS64], out);
  } else {
    memset(out->counters, 0, sizeof(out->counters));
  }
}

// Reads one request with its namespace's socket; returns false when the socket must be dropped.
bool Query(nl_sock* sk, const Request& r, Outcome* out) {
  try {
    nl_msg* msg = nullptr;
    int err = r.ifname.empty() ? 0 : rtnl_link_build_get_request(0, r.ifname.c_str(), &msg);
    if (err < 0) throw NlError(err, "build RTM_GETLINK", r.path);
    if (r.ifname.empty()) {
      msg = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP);
      struct ifinfomsg ifi = {};
      ifi.ifi_family = AF_UNSPEC;
      if (!msg || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
        nlmsg_free(msg);
        throw NlError(-NLE_NOMEM, "build RTM_GETLINK", r.path);
      }
    }
    err = Exchange(sk, msg, r.ifname.empty(), [&](ifinfomsg* ifi, nlattr** tb) {
      if (r.ifname.empty() && (ifi->ifi_flags & IFF_LOOPBACK)) return;
      out->links.emplace_back();
      LinkFrom(tb, &out->links.back());
    }, r.path);
    if (err == -ENODEV) {
      out->failed = true;
      out->error.code = "ERR_NO_SUCH_INTERFACE";
      out->error.message = "no interface '" + r.ifname + "' in network namespace '" + r.path + "'";
      out->error.path = r.path;
    } else if (err < 0) {
      out->failed = true;
      out->error = ErrnoError(-err, "RTM_GETLINK", r.path);
    } else if (!r.ifname.empty() && out->links.size() != 1) {
      throw NlError(-NLE_MSG_TRUNC, "read link '" + r.ifname + "': no RTM_NEWLINK reply", r.path);
    }
    return true;
  } catch (const NativeError& e) {
    out->failed = true;
    out->error = e;
    out->links.clear();
    return false;
  }
}

void RunBatch(const std::vector<Request>& reqs, std::vector<Outcome>& outs) {
  std::lock_guard<std::mutex> guard(g_mu);
  const auto now = Clock::now();
  outs.assign(reqs.size(), Outcome());
  std::vector<Key> keys(reqs.size());
  std::vector<bool> ready(reqs.size(), false);
  std::vector<Pending> pending;
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
    Pending p;
    p.path = path;
    try {
      struct stat st;
      p.nsfd = OpenNetns(path, &st);
      p.key = Key{st.st_dev, st.st_ino};
    } catch (const NativeError& e) {
      p.failed = true;
      p.error = e;
    }
    pendingByKey[key] = pending.size();
    waits.emplace_back(i, pending.size());
    pending.push_back(std::move(p));
  }

  if (!pending.empty()) {
    CreateSockets(pending);
    for (auto& p : pending) {
      p.nsfd = Fd();
      if (p.failed) continue;
      auto it = g_cache.find(p.key);
      if (it != g_cache.end()) {  // the path moved to a cached namespace meanwhile
        nl_socket_free(p.sk);
      } else {
        g_cache[p.key].sk = p.sk;
      }
    }
    for (auto [i, pi] : waits) {
      Pending& p = pending[pi];
      if (p.failed) {
        outs[i].failed = true;
        outs[i].error = p.error;
        outs[i].error.path = reqs[i].path;
        continue;
      }
      Bind(reqs[i].path, p.key, now);
      keys[i] = p.key;
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
    if (!Query(it->second.sk, reqs[i], &outs[i])) FreeSocket(it);
  }
  Sweep(now);
}

// statsRead([[path, ifname|null], ...]) -> Promise<[errors, counts, names, counters]>:
// errors[i] is an Error or undefined; counts[i] the number of links of entry i;
// names and counters (kNumCounters per link) list the links of all entries in
// order (names only for entries without an interface name). Flat arrays keep the crossing into JS cheap for thousands of entries.
Napi::Value StatsRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "statsRead expects an array");
  Napi::Array in = info[0].As<Napi::Array>();
  auto reqs = std::make_shared<std::vector<Request>>(in.Length());
  for (uint32_t i = 0; i < in.Length(); i++) {
    Napi::Value v = in.Get(i);
    if (!v.IsArray()) throw Napi::TypeError::New(env, "statsRead entry must be [path, ifname]");
    Napi::Array e = v.As<Napi::Array>();
    Napi::Value p = e.Get(uint32_t(0)), n = e.Get(uint32_t(1));
    if (!p.IsString()) throw Napi::TypeError::New(env, "statsRead entry path must be a string");
    (*reqs)[i].path = p.As<Napi::String>().Utf8Value();
    if (n.IsString()) (*reqs)[i].ifname = n.As<Napi::String>().Utf8Value();
  }
  auto outs = std::make_shared<std::vector<Outcome>>();
  return RunAsync(
      env, [=] { RunBatch(*reqs, *outs); },
      [=](Napi::Env env) -> Napi::Value {
        size_t total = 0;
        for (const Outcome& o : *outs) total += o.links.size();
        Napi::Array errors = Napi::Array::New(env, outs->size());
        Napi::Int32Array counts = Napi::Int32Array::New(env, outs->size());
        Napi::Array names = Napi::Array::New(env, total);
        Napi::Float64Array counters = Napi::Float64Array::New(env, total * kNumCounters);
        double* c = counters.Data();
        uint32_t k = 0;
        for (uint32_t i = 0; i < outs->size(); i++) {
          const Outcome& o = (*outs)[i];
          if (o.failed) errors.Set(i, ToJsError(env, o.error).Value());
          counts[i] = static_cast<int32_t>(o.links.size());
          const bool named = (*reqs)[i].ifname.empty();  // JS knows the name of a single link
          for (const Link& l : o.links) {
            if (named) names.Set(k, Napi::String::New(env, l.name));
            for (size_t j = 0; j < kNumCounters; j++) *c++ = static_cast<double>(l.counters[j]);
            k++;
          }
        }
        Napi::Array r = Napi::Array::New(env, 4);
        r.Set(uint32_t(0), errors);
        r.Set(uint32_t(1), counts);
        r.Set(uint32_t(2), names);
        r.Set(uint32_t(3), counters);
        return r;
      });
}

// statsRelease(path|null) -> Promise<number of sockets closed>; null releases all.
Napi::Value StatsRelease(const Napi::CallbackInfo& info) {
  bool all = info.Length() < 1 || !info[0].IsString();
  std::string path = all ? "" : info[0].As<Napi::String>().Utf8Value();
  auto closed = std::make_shared<size_t>(0);
  return RunAsync(
      info.Env(),
      [=] {
        std::lock_guard<std::mutex> guard(g_mu);
        size_t before = g_cache.size();
        if (all) {
          while (!g_cache.empty()) FreeSocket(g_cache.begin());
        } else {
          // The path itself, or whatever namespace it names now.
          Unbind(path);
          struct stat st;
          if (stat(path.c_str(), &st) == 0) {
            auto it = g_cache.find(Key{st.st_dev, st.st_ino});
            if (it != g_cache.end()) FreeSocket(it);
          }
        }
        *closed = before - g_cache.size();
      },
      [=](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(*closed)); });
}

// statsCacheInfo() -> {sockets, paths}; a snapshot for tests and diagnostics.
Napi::Value StatsCacheInfo(const Napi::CallbackInfo& info) {
  auto counts = std::make_shared<std::pair<size_t, size_t>>();
  return RunAsync(
      info.Env(),
      [=] {
        std::lock_guard<std::mutex> guard(g_mu);
        *counts = {g_cache.size(), g_byPath.size()};
      },
      [=](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("sockets", static_cast<double>(counts->first));
        o.Set("paths", static_cast<double>(counts->second));
        return o;
      });
}

}  // namespace

void InitStats(Napi::Env env, Napi::Object exports) {
  exports.Set("statsRead", Napi::Function::New(env, StatsRead, "statsRead"));
  exports.Set("statsRelease", Napi::Function::New(env, StatsRelease, "statsRelease"));
  exports.Set("statsCacheInfo", Napi::Function::New(env, StatsCacheInfo, "statsCacheInfo"));
}

}  // namespace podnet
