// podnet-portfwd: the port forwarder process (podnet's rootlessport).
//
// Configuration arrives as JSON on stdin:
//   {"netns": path, "userns": path|"", "target": ip|"",
//    "listen": [{"proto": "tcp"|"udp", "ip": host ip, "port": n, "cport": n}, ...]}
// fd 3 is the exit fd: the forwarder ends when it reads EOF (its owner stopped
// it or died). fd 4 is the ready fd: "1" is written once every listener is
// bound. On a failure before that, one line "CODE: message" goes to stdout and
// the process exits 1, so no listener stays open.
//
// epoll, edge-triggered, in a few worker loops (one per CPU, at most 4; the
// main thread's loop is one of them). Every loop watches the TCP listeners with
// EPOLLEXCLUSIVE; the loop that accepts keeps the connection unless another
// serves fewer (then it posts the fd to that loop's inbox), so streams spread
// over cores and a lone short connection is not handed between threads. TCP
// bytes move with splice() through a bounded pipe per direction: a slow reader
// stops reads from its peer (memory stays at the pipe size). A connection that
// turns out to be bulk (fills a pipe in one move) leaves the loop for a pair of
// threads doing blocking splice (Conn::HandOff). Legs that stay inside the host
// use reno (LocalCongestionControl). UDP is relayed by the main thread, per
// client address, through a connected socket in the namespace.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "json.h"
#include "nsock.h"

namespace pfwd {
namespace {

constexpr int kExitFd = 3;
constexpr int kReadyFd = 4;
// Pipes start at the default size (64 KiB) and grow to kBulkPipe once a
// connection fills one in a single splice: bulk streams get fewer, larger
// moves (less CPU per byte) while short connections stay small. Pipe pages are
// charged to the user (fs/pipe-user-pages-soft): an unprivileged forwarder with
// large pipes everywhere would shrink every other pipe of that user.
constexpr int kBulkPipe = 1024 * 1024;
constexpr int kUdpIdleSec = 60;

constexpr int kMaxWorkers = 4;
constexpr size_t kSparePipes = 32;  // per worker, kept for reuse by short connections
// Bulk connections relayed by their own thread pair at most (more stay on the
// loops): bounds the threads, and the memory of their stacks, under many streams.
constexpr int kMaxBulk = 32;
constexpr size_t kBulkStack = 64 * 1024;

thread_local int t_ep = -1;  // this loop's epoll
int g_workers[kMaxWorkers];  // every loop's epoll; [0] is the main thread's
int g_nworkers = 1;
std::atomic<int> g_load[kMaxWorkers];  // open connections per loop
thread_local int t_index = 0;          // this loop's index
std::atomic<int> g_bulk{0};             // connections handed to thread pairs
// Whether the target is the namespace's own address (so the container leg
// never leaves the host): 1 for the default target (the namespace's first
// global address); for a given one, -1 until the first connection shows it.
std::atomic<int> g_targetLocal{-1};
NsSockets g_ns;
std::mutex g_nsMu;  // g_ns is shared by the loops
sockaddr_storage g_target{};

// Exits after reaping the namespace helper, so no orphan (or zombie, where
// PID 1 does not reap) outlives the forwarder.
[[noreturn]] void Exit(int status) {
  pid_t h = g_ns.helper_pid();
  if (h > 0) {
    kill(h, SIGKILL);
    while (waitpid(h, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  _exit(status);
}

[[noreturn]] void Fail(const char* code, const std::string& msg) {
  dprintf(1, "%s: %s\n", code, msg.c_str());
  Exit(1);
}
[[noreturn]] void FailErrno(const std::string& what) {
  int e = errno;
  Fail(strerrorname_np(e) ? strerrorname_np(e) : "EIO", what + ": " + strerror(e));
}

struct Handler {
  virtual ~Handler() = default;
  virtual void OnEvent(uint32_t ev) = 0;
  virtual void Destroy() { delete this; }
};

thread_local std::vector<Handler*> t_dead;  // freed after the current batch of events
thread_local std::vector<int> t_pipes;      // empty pipes (read end, write end) for reuse

bool Watch(int ep, int fd, Handler* h, uint32_t ev) {
  epoll_event e{};
  e.events = ev;
  e.data.ptr = h;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0;
}

// The container address with `port`, in a sockaddr of the right size.
socklen_t TargetFor(int port, sockaddr_storage* out) {
  *out = g_target;
  if (out->ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(out)->sin6_port = htons(port);
    return sizeof(sockaddr_in6);
  }
  reinterpret_cast<sockaddr_in*>(out)->sin_port = htons(port);
  return sizeof(sockaddr_in);
}

// ---- TCP ----

struct Conn;
struct Side : Handler {
  Conn* c = nullptr;
  int fd = -1;
  void OnEvent(uint32_t ev) override;
  void Destroy() override;  // frees the whole Conn
};

// One direction: src -> pipe -> dst.
struct Dir {
  int pr = -1, pw = -1;
  size_t pending = 0;  // bytes in the pipe
  int size = 0;        // pipe capacity
  bool done = false;   // EOF seen and forwarded as shutdown(SHUT_WR)

  bool bulk() const { return size >= kBulkPipe; }
  // After a read of n bytes into the pipe: a read that filled it marks a bulk stream.
  void Filled(size_t n) {
    pending = n;
    if (n >= static_cast<size_t>(size) && size < kBulkPipe) {
      int grown = fcntl(pw, F_SETPIPE_SZ, kBulkPipe);  // best effort
      size = grown > 0 ? grown : kBulkPipe;           // on failure: do not try again
    }
  }
};

bool IsLoopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr) >> 24) == 127;
  return ss.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
}

// Whether a connected socket's peer is this host (loopback, or our own end's
// address): such a connection never crosses a network.
bool PeerIsLocal(int fd) {
  sockaddr_storage a{}, b{};
  socklen_t al = sizeof a, bl = sizeof b;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &al) != 0 ||
      getpeername(fd, reinterpret_cast<sockaddr*>(&b), &bl) != 0 || a.ss_family != b.ss_family)
    return false;
  if (IsLoopback(b)) return true;
  if (b.ss_family == AF_INET)
    return reinterpret_cast<sockaddr_in*>(&a)->sin_addr.s_addr == reinterpret_cast<sockaddr_in*>(&b)->sin_addr.s_addr;
  return memcmp(&reinterpret_cast<sockaddr_in6*>(&a)->sin6_addr, &reinterpret_cast<sockaddr_in6*>(&b)->sin6_addr,
                sizeof(in6_addr)) == 0;
}

// Congestion control for a leg that stays inside this host: the container end
// when the target is the namespace's own address, the client end when the
// listener is on a loopback address (accepted sockets inherit the listener's).
// Pacing is for a network bottleneck: on a host whose default is bbr every
// segment is paced by an hrtimer, which on a loopback or veth leg only costs
// CPU (measured here at a fixed 4 Gbit/s: 30-45% of the forwarder's CPU per
// byte, and the receiving end wakes more often). reno is built in, allowed to
// every user and does not pace; on a lossless local leg it moves bytes as fast
// as any other. It must be chosen before the handshake: a connection that
// switches away from bbr later keeps being paced. Best effort: the default
// stays on failure.
void LocalCongestionControl(int fd) {
  static const char kReno[] = "reno";
  setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, kReno, sizeof kReno - 1);
}

// A bulk connection, relayed by two threads with blocking splice, one per
// direction (see Conn::HandOff). The last thread out closes everything.
struct Bulk {
  int fd[2];  // client, upstream
  Dir dir[2];  // client->upstream, upstream->client
  int loop = 0;
  std::atomic<int> refs{2};
  std::mutex gate;  // held by the loop until both threads exist
  bool abort = false;
};
struct BulkHalf {
  Bulk* b;
  int i;  // direction
};

// Moves one direction until EOF (passed on) or an error (false).
bool PumpBlocking(Dir& d, int src, int dst) {
  for (;;) {
    while (d.pending > 0) {
      ssize_t n = splice(d.pr, nullptr, dst, nullptr, d.pending, SPLICE_F_MOVE);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      d.pending -= n;
    }
    if (d.done) return true;
    ssize_t n = splice(src, nullptr, d.pw, nullptr, d.size, SPLICE_F_MOVE);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      shutdown(dst, SHUT_WR);
      d.done = true;
      return true;
    }
    d.Filled(n);
  }
}

void* BulkMain(void* arg) {
  BulkHalf h = *static_cast<BulkHalf*>(arg);
  delete static_cast<BulkHalf*>(arg);
  Bulk* b = h.b;
  { std::lock_guard<std::mutex> wait(b->gate); }
  if (b->abort) return nullptr;  // the loop keeps the connection (and joins us)
  int src = b->fd[h.i], dst = b->fd[1 - h.i];
  if (!PumpBlocking(b->dir[h.i], src, dst)) {
    // Wake the other direction's thread (its splice returns) and end both.
    shutdown(src, SHUT_RDWR);
    shutdown(dst, SHUT_RDWR);
  }
  if (b->refs.fetch_sub(1) == 1) {
    close(b->fd[0]);
    close(b->fd[1]);
    for (Dir& d : b->dir) {
      close(d.pr);
      close(d.pw);
    }
    g_load[b->loop]--;
    g_bulk--;
    delete b;
  }
  return nullptr;
}

struct Conn {
  Side client, upstream;
  int loop = 0;  // the loop that serves it
  Dir up, down;  // client->upstream, upstream->client
  bool connected = false;
  bool closed = false;
  bool stayOnLoop = false;

  void Close() {
    if (closed) return;
    closed = true;
    close(client.fd);
    close(upstream.fd);
    for (Dir* d : {&up, &down}) {
      if (d->pr < 0) continue;
      if (d->pending == 0 && d->size < kBulkPipe && t_pipes.size() < 2 * kSparePipes) {
        t_pipes.push_back(d->pr);
        t_pipes.push_back(d->pw);
      } else {
        close(d->pr);
        close(d->pw);
      }
    }
    g_load[loop]--;
    t_dead.push_back(&client);
  }

  // Moves what can move now; false on a fatal error.
  static bool Pump(Dir& d, int src, int dst) {
    while (!d.done) {
      if (d.pending > 0) {
        ssize_t n = splice(d.pr, nullptr, dst, nullptr, d.pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        d.pending -= n;
        continue;
      }
      ssize_t n = splice(src, nullptr, d.pw, nullptr, kBulkPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d.Filled(n);
        continue;
      }
      if (n == 0) {  // EOF: pass the half-close on
        shutdown(dst, SHUT_WR);
        d.done = true;
        break;
      }
      return errno == EAGAIN || errno == EINTR;
    }
    return true;
  }

  bool MakePipe(Dir& d) {
    if (!t_pipes.empty()) {
      d.pw = t_pipes.back();
      t_pipes.pop_back();
      d.pr = t_pipes.back();
      t_pipes.pop_back();
    } else {
      int p[2];
      if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return false;
      d.pr = p[0];
      d.pw = p[1];
    }
    d.size = fcntl(d.pw, F_GETPIPE_SZ);
    return true;
  }

  // A bulk stream goes to a thread pair doing blocking splice. Measured here
  // (one iperf3 stream held at 4 Gbit/s, reno on the container leg) the
  // forwarder's CPU per byte fell from 0.26-0.32 to 0.15-0.17 s/GB, the same
  // as the plain C relay (scripts/bench/portfwd-splice.c), and the client's
  // own CPU fell too. Each wake-up is one read and one write instead of
  // epoll_wait, reads and writes until EAGAIN; a blocking tcp_splice_read also
  // keeps taking what arrives while it holds the socket. Short connections
  // never fill a pipe and stay on the loop (no thread start per connection).
  // Returns false (the connection stays here) when no threads can be had.
  bool HandOff() {
    if (g_bulk.fetch_add(1) >= kMaxBulk) {
      g_bulk--;
      return false;
    }
    auto* b = new Bulk;
    b->fd[0] = client.fd;
    b->fd[1] = upstream.fd;
    b->dir[0] = up;
    b->dir[1] = down;
    b->loop = loop;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kBulkStack);
    pthread_t t[2];
    int made = 0;
    b->gate.lock();
    for (; made < 2; made++) {
      auto* h = new BulkHalf{b, made};
      if (pthread_create(&t[made], &attr, BulkMain, h) != 0) {
        delete h;
        break;
      }
    }
    pthread_attr_destroy(&attr);
    if (made < 2) {
      b->abort = true;
      b->gate.unlock();
      if (made) pthread_join(t[0], nullptr);
      delete b;
      g_bulk--;
      return false;
    }
    for (int fd : {client.fd, upstream.fd}) {
      epoll_ctl(t_ep, EPOLL_CTL_DEL, fd, nullptr);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    }
    for (Dir* d : {&up, &down})
      for (int fd : {d->pr, d->pw}) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    b->gate.unlock();
    pthread_detach(t[0]);
    pthread_detach(t[1]);
    closed = true;  // the fds are the threads' now; events already queued are ignored
    t_dead.push_back(&client);
    return true;
  }

  void Event(Side* s, uint32_t ev) {
    if (closed) return;
    if (!connected) {
      if (s != &upstream) return;  // client data waits until the upstream connects
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == EINPROGRESS || (!err && !(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))) return;
      if (err || !MakePipe(up) || !MakePipe(down)) return Close();
      connected = true;
      if (g_targetLocal < 0) g_targetLocal = PeerIsLocal(upstream.fd);  // from now on, reno before connect
      ev = EPOLLIN | EPOLLOUT;  // move what the client sent meanwhile
      s = nullptr;
    }
    // Only the directions this event can unblock: reading from s, writing to s.
    bool readable = ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool writable = ev & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    bool doUp = !s || (s == &client ? readable : writable);
    bool doDown = !s || (s == &upstream ? readable : writable);
    if ((doUp && !Pump(up, client.fd, upstream.fd)) || (doDown && !Pump(down, upstream.fd, client.fd))) return Close();
    if (up.done && down.done) return Close();
    if (!stayOnLoop && (up.bulk() || down.bulk())) {
      if (HandOff()) return;
      stayOnLoop = true;  // no threads for it: relay it here to the end
    }
  }
};

void Side::OnEvent(uint32_t ev) { c->Event(this, ev); }
void Side::Destroy() { delete c; }

// Starts relaying an accepted client connection on this loop.
void StartConn(int cfd, int cport) {
  int ufd;
  {
    std::lock_guard<std::mutex> lock(g_nsMu);
    ufd = g_ns.Take(g_target.ss_family, SOCK_STREAM);
  }
  if (ufd >= 0 && g_targetLocal == 1) LocalCongestionControl(ufd);
  sockaddr_storage t;
  socklen_t tl = TargetFor(cport, &t);
  if (ufd < 0 || (connect(ufd, reinterpret_cast<sockaddr*>(&t), tl) != 0 && errno != EINPROGRESS)) {
    if (ufd < 0) dprintf(2, "podnet-portfwd: socket in namespace: %s\n", strerror(errno));
    close(cfd);
    if (ufd >= 0) close(ufd);
    g_load[t_index]--;
    return;
  }
  Conn* c = new Conn;
  c->client.c = c->upstream.c = c;
  c->client.fd = cfd;
  c->upstream.fd = ufd;
  c->loop = t_index;
  uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  if (!Watch(t_ep, cfd, &c->client, ev) || !Watch(t_ep, ufd, &c->upstream, ev)) {
    close(cfd);  // closing drops them from this loop's epoll
    close(ufd);
    g_load[t_index]--;
    delete c;
    return;
  }
  // Inside one host the handshake has usually completed already: start now
  // rather than one event-loop round later (short connections).
  pollfd p{ufd, POLLOUT, 0};
  if (poll(&p, 1, 0) == 1) c->upstream.OnEvent(p.revents & POLLOUT ? EPOLLOUT : EPOLLERR);
}

// Accepted connections handed to another loop, with the eventfd that wakes it.
struct Inbox : Handler {
  int efd = -1;
  std::mutex mu;
  std::vector<std::pair<int, int>> conns;  // client fd, container port
  void Post(int cfd, int cport) {
    {
      std::lock_guard<std::mutex> lock(mu);
      conns.emplace_back(cfd, cport);
    }
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) < 0) {}  // a full counter still wakes the loop
  }
  void OnEvent(uint32_t) override {
    uint64_t n;
    if (read(efd, &n, sizeof n) < 0) {}
    std::vector<std::pair<int, int>> mine;
    {
      std::lock_guard<std::mutex> lock(mu);
      mine.swap(conns);
    }
    for (auto& [cfd, cport] : mine) StartConn(cfd, cport);
  }
};
Inbox g_inbox[kMaxWorkers];

struct TcpListener : Handler {
  int fd = -1;
  int cport = 0;
  // One per wake-up: the next pending connection may wake another, idle loop.
  void OnEvent(uint32_t) override {
    int cfd = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        dprintf(2, "podnet-portfwd: accept: %s\n", strerror(errno));
      return;
    }
    int loop = t_index;
    for (int i = 0; i < g_nworkers; i++)
      if (g_load[i] < g_load[loop]) loop = i;
    g_load[loop]++;
    if (loop == t_index) StartConn(cfd, cport);
    else g_inbox[loop].Post(cfd, cport);
  }
};

// ---- UDP ----

struct UdpListener;
struct UdpFlow : Handler {
  UdpListener* l = nullptr;
  int fd = -1;
  sockaddr_storage peer{};
  socklen_t plen = 0;
  // Replies leave from the address the client sent to (a wildcard listener
  // would otherwise let routing pick another source, which the client drops).
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  size_t ctllen = 0;
  time_t last = 0;
  void OnEvent(uint32_t) override;
};

// Reads the datagram's destination from IP_PKTINFO/IPV6_PKTINFO and builds
// the control message that makes it the source of replies.
size_t ReplyControl(msghdr* in, char* out) {
  for (cmsghdr* c = CMSG_FIRSTHDR(in); c; c = CMSG_NXTHDR(in, c)) {
    msghdr mh{};
    mh.msg_control = out;
    mh.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
    cmsghdr* o = CMSG_FIRSTHDR(&mh);
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      in_pktinfo reply{};
      reply.ipi_spec_dst = pi.ipi_addr;
      o->cmsg_level = IPPROTO_IP;
      o->cmsg_type = IP_PKTINFO;
      o->cmsg_len = CMSG_LEN(sizeof reply);
      memcpy(CMSG_DATA(o), &reply, sizeof reply);
      return CMSG_SPACE(sizeof reply);
    }
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      pi.ipi6_ifindex = 0;
      o->cmsg_level = IPPROTO_IPV6;
      o->cmsg_type = IPV6_PKTINFO;
      o->cmsg_len = CMSG_LEN(sizeof pi);
      memcpy(CMSG_DATA(o), &pi, sizeof pi);
      return CMSG_SPACE(sizeof pi);
    }
  }
  return 0;
}

struct UdpListener : Handler {
  int fd = -1;
  int cport = 0;
  std::map<std::string, UdpFlow*> flows;

  void OnEvent(uint32_t) override {
    static char buf[65536];
    for (;;) {
      sockaddr_storage peer;
      alignas(cmsghdr) char cin[256];
      iovec iov{buf, sizeof buf};
      msghdr mh{};
      mh.msg_name = &peer;
      mh.msg_namelen = sizeof peer;
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = cin;
      mh.msg_controllen = sizeof cin;
      ssize_t n = recvmsg(fd, &mh, 0);
      if (n < 0) return;
      alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
      size_t ctllen = ReplyControl(&mh, ctl);
      // One flow per client address and the local address it sent to.
      std::string key(reinterpret_cast<char*>(&peer), mh.msg_namelen);
      key.append(ctl, ctllen);
      UdpFlow*& f = flows[key];
      if (!f) {
        int ufd;
        {
          std::lock_guard<std::mutex> lock(g_nsMu);
          ufd = g_ns.Take(g_target.ss_family, SOCK_DGRAM);
        }
        sockaddr_storage t;
        socklen_t tl = TargetFor(cport, &t);
        if (ufd < 0 || connect(ufd, reinterpret_cast<sockaddr*>(&t), tl) != 0) {
          if (ufd >= 0) close(ufd);
          flows.erase(key);
          continue;
        }
        f = new UdpFlow;
        f->l = this;
        f->fd = ufd;
        f->peer = peer;
        f->plen = mh.msg_namelen;
        memcpy(f->ctl, ctl, sizeof ctl);
        f->ctllen = ctllen;
        if (!Watch(t_ep, ufd, f, EPOLLIN)) {
          close(ufd);
          delete f;
          flows.erase(key);
          continue;
        }
      }
      f->last = time(nullptr);
      send(f->fd, buf, n, MSG_DONTWAIT);  // datagrams: drop when the queue is full
    }
  }

  void Sweep(time_t now) {
    for (auto it = flows.begin(); it != flows.end();) {
      if (now - it->second->last < kUdpIdleSec) { ++it; continue; }
      close(it->second->fd);
      t_dead.push_back(it->second);
      it = flows.erase(it);
    }
  }
};

void UdpFlow::OnEvent(uint32_t) {
  static char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return;  // EAGAIN, or ECONNREFUSED from an ICMP error: the flow stays until idle
    last = time(nullptr);
    iovec iov{buf, static_cast<size_t>(n)};
    msghdr mh{};
    mh.msg_name = &peer;
    mh.msg_namelen = plen;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (ctllen) {
      mh.msg_control = ctl;
      mh.msg_controllen = ctllen;
    }
    sendmsg(l->fd, &mh, MSG_DONTWAIT);
  }
}

struct ExitWatch : Handler {
  void OnEvent(uint32_t) override { Exit(0); }
};

// ---- set-up ----

bool ParseAddr(const std::string& ip, int port, sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    *len = sizeof *s4;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    *len = sizeof *s6;
    return true;
  }
  return false;
}

// One round of this thread's event loop.
void RunOnce(int timeoutMs) {
  epoll_event evs[128];
  int n = epoll_wait(t_ep, evs, 128, timeoutMs);
  if (n < 0 && errno != EINTR) FailErrno("epoll_wait");
  for (int i = 0; i < n; i++) static_cast<Handler*>(evs[i].data.ptr)->OnEvent(evs[i].events);
  for (Handler* h : t_dead) h->Destroy();
  t_dead.clear();
}

void* WorkerMain(void* ep) {
  t_ep = *static_cast<int*>(ep);
  t_index = static_cast<int*>(ep) - g_workers;
  for (;;) RunOnce(-1);
}

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return s;
    s.append(buf, n);
  }
}

int Listen(const std::string& proto, const std::string& ip, int port) {
  std::string name = proto + " " + (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" +
                     std::to_string(port);
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseAddr(ip, port, &ss, &len)) Fail("ERR_INVALID_ARGUMENT", "cannot listen on " + name + ": bad address");
  bool tcp = proto == "tcp";
  int fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) FailErrno("cannot listen on " + name + ": socket");
  int one = 1;
  if (tcp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (!tcp && ss.ss_family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  if (!tcp && ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) FailErrno("cannot listen on " + name);
  if (tcp && listen(fd, 4096) != 0) FailErrno("cannot listen on " + name);
  if (tcp && IsLoopback(ss)) LocalCongestionControl(fd);
  return fd;
}

}  // namespace

int Main() {
  signal(SIGPIPE, SIG_IGN);
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;  // each TCP connection holds six fds
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (fcntl(kExitFd, F_GETFD) < 0 || fcntl(kReadyFd, F_GETFD) < 0)
    Fail("ERR_INVALID_ARGUMENT", "fd 3 (exit) and fd 4 (ready) must be open");
  fcntl(kExitFd, F_SETFD, FD_CLOEXEC);
  fcntl(kReadyFd, F_SETFD, FD_CLOEXEC);

  Json cfg;
  std::string err;
  if (!ParseJson(ReadAll(0), &cfg, &err) || cfg.kind != Json::Obj)
    Fail("ERR_INVALID_ARGUMENT", "config on stdin: " + (err.empty() ? "not an object" : err));
  const Json* listen = cfg.get("listen");
  if (!listen || listen->kind != Json::Arr || listen->arr.empty())
    Fail("ERR_INVALID_ARGUMENT", "config on stdin: 'listen' must be a non-empty array");

  std::string code, msg;
  if (!g_ns.Open(cfg.getStr("netns"), cfg.getStr("userns"), &code, &msg)) Fail(code.c_str(), msg);
  std::string target = cfg.getStr("target");
  if (!target.empty()) {
    socklen_t len;
    if (!ParseAddr(target, 0, &g_target, &len)) Fail("ERR_INVALID_ARGUMENT", "bad target address '" + target + "'");
  } else if (!g_ns.FirstGlobal(&g_target)) {
    Fail("ERR_PORTFWD_NO_ADDRESS", "network namespace " + cfg.getStr("netns") + " has no global address to forward to");
  } else {
    g_targetLocal = 1;
  }

  g_nworkers = get_nprocs() < kMaxWorkers ? get_nprocs() : kMaxWorkers;
  if (g_nworkers < 1) g_nworkers = 1;
  for (int i = 0; i < g_nworkers; i++) {
    g_workers[i] = epoll_create1(EPOLL_CLOEXEC);
    g_inbox[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g_workers[i] < 0 || g_inbox[i].efd < 0) FailErrno("epoll_create1/eventfd");
    if (!Watch(g_workers[i], g_inbox[i].efd, &g_inbox[i], EPOLLIN)) FailErrno("epoll_ctl");
  }
  t_ep = g_workers[0];
  std::vector<UdpListener*> udp;
  for (const Json& l : listen->arr) {
    std::string proto = l.getStr("proto");
    int port = l.getInt("port"), cport = l.getInt("cport");
    if ((proto != "tcp" && proto != "udp") || port < 1 || port > 65535 || cport < 1 || cport > 65535)
      Fail("ERR_INVALID_ARGUMENT", "config on stdin: bad listen entry");
    int fd = Listen(proto, l.getStr("ip"), port);
    if (proto == "tcp") {
      auto* h = new TcpListener;
      h->fd = fd;
      h->cport = cport;
      for (int i = 0; i < g_nworkers; i++)
        if (!Watch(g_workers[i], fd, h, EPOLLIN | EPOLLEXCLUSIVE)) FailErrno("epoll_ctl");
    } else {
      auto* h = new UdpListener;
      h->fd = fd;
      h->cport = cport;
      udp.push_back(h);
      if (!Watch(t_ep, fd, h, EPOLLIN)) FailErrno("epoll_ctl");
    }
  }
  ExitWatch exitWatch;
  if (!Watch(t_ep, kExitFd, &exitWatch, EPOLLIN)) FailErrno("epoll_ctl");
  for (int i = 1; i < g_nworkers; i++) {
    pthread_t t;
    if (pthread_create(&t, nullptr, WorkerMain, &g_workers[i]) != 0) FailErrno("pthread_create");
  }
  if (write(kReadyFd, "1", 1) != 1) FailErrno("write ready fd");
  close(kReadyFd);

  time_t lastSweep = time(nullptr);
  for (;;) {
    RunOnce(udp.empty() ? -1 : 10000);
    time_t now = time(nullptr);
    if (!udp.empty() && now - lastSweep >= 10) {
      for (UdpListener* u : udp) u->Sweep(now);
      lastSweep = now;
    }
  }
}

}  // namespace pfwd

int main() { return pfwd::Main(); }
