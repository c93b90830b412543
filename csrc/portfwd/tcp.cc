#include "tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "bulk.h"
#include "loop.h"
#include "upstream.h"

namespace pfwd {

namespace {

constexpr size_t kSparePipes = 32;  // per loop, kept for reuse by short connections

Upstream* g_up = nullptr;
thread_local std::vector<int> t_pipes;  // empty pipes (read end, write end) for reuse

struct Conn;
struct Side : Handler {
  Conn* c = nullptr;
  int fd = -1;
  void OnEvent(uint32_t ev) override;
  void Destroy() override;  // frees the whole Conn
};

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
    DestroyLater(&client);
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

  static bool MakePipe(Dir& d) {
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
      if (HandOffBulk(ThisEpoll(), loop, client.fd, upstream.fd, up, down)) {
        closed = true;  // the fds are the threads' now; events already queued are ignored
        DestroyLater(&client);
        return;
      }
      stayOnLoop = true;  // no threads for it: relay it here to the end
    }
  }
};

void Side::OnEvent(uint32_t ev) { c->Event(this, ev); }
void Side::Destroy() { delete c; }

// Starts relaying an accepted client connection on this loop.
void StartConn(int cfd, int cport, const sockaddr_storage& peer) {
  int ufd = g_up->Dial(SOCK_STREAM, &peer, cport);
  if (ufd < 0) {
    dprintf(2, "podnet-portfwd: connect in namespace: %s\n", strerror(-ufd));
    close(cfd);
    g_load[ThisLoop()]--;
    return;
  }
  Conn* c = new Conn;
  c->client.c = c->upstream.c = c;
  c->client.fd = cfd;
  c->upstream.fd = ufd;
  c->loop = ThisLoop();
  uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  if (!Watch(ThisEpoll(), cfd, &c->client, ev) || !Watch(ThisEpoll(), ufd, &c->upstream, ev)) {
    close(cfd);  // closing drops them from this loop's epoll
    close(ufd);
    g_load[ThisLoop()]--;
    delete c;
    return;
  }
  // Inside one host the handshake has usually completed already: start now
  // rather than one event-loop round later (short connections).
  pollfd p{ufd, POLLOUT, 0};
  if (poll(&p, 1, 0) == 1) c->upstream.OnEvent(p.revents & POLLOUT ? EPOLLOUT : EPOLLERR);
}

// Accepted connections handed to another loop, with the eventfd that wakes it.
struct Accepted {
  int fd, cport;
  sockaddr_storage peer;
};
struct Inbox : Handler {
  int efd = -1;
  std::mutex mu;
  std::vector<Accepted> conns;
  void Post(const Accepted& a) {
    {
      std::lock_guard<std::mutex> lock(mu);
      conns.push_back(a);
    }
    uint64_t one = 1;
    if (write(efd, &one, sizeof one) < 0) {
    }  // a full counter still wakes the loop
  }
  void OnEvent(uint32_t) override {
    uint64_t n;
    if (read(efd, &n, sizeof n) < 0) {
    }
    std::vector<Accepted> mine;
    {
      std::lock_guard<std::mutex> lock(mu);
      mine.swap(conns);
    }
    for (const Accepted& a : mine) StartConn(a.fd, a.cport, a.peer);
  }
};
Inbox g_inbox[kMaxLoops];

struct TcpListener : Handler {
  int fd = -1;
  int cport = 0;
  // One per wake-up: the next pending connection may wake another, idle loop.
  void OnEvent(uint32_t) override {
    Accepted a{-1, cport, {}};
    socklen_t len = sizeof a.peer;
    a.fd = accept4(fd, reinterpret_cast<sockaddr*>(&a.peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (a.fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        dprintf(2, "podnet-portfwd: accept: %s\n", strerror(errno));
      return;
    }
    int self = ThisLoop(), loop = self;
    for (int i = 0; i < LoopCount(); i++)
      if (g_load[i] < g_load[loop]) loop = i;
    g_load[loop]++;
    if (loop == self)
      StartConn(a.fd, a.cport, a.peer);
    else
      g_inbox[loop].Post(a);
  }
};

}  // namespace

void Dir::Filled(size_t n) {
  pending = n;
  if (n >= static_cast<size_t>(size) && size < kBulkPipe) {
    int grown = fcntl(pw, F_SETPIPE_SZ, kBulkPipe);  // best effort
    size = grown > 0 ? grown : kBulkPipe;            // on failure: do not try again
  }
}

int InitTcp(Upstream* up) {
  g_up = up;
  for (int i = 0; i < LoopCount(); i++) {
    g_inbox[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g_inbox[i].efd < 0 || !Watch(LoopEpoll(i), g_inbox[i].efd, &g_inbox[i], EPOLLIN)) return -errno;
  }
  return 0;
}

int WatchTcpListener(int fd, int cport) {
  auto* h = new TcpListener;
  h->fd = fd;
  h->cport = cport;
  for (int i = 0; i < LoopCount(); i++)
    if (!Watch(LoopEpoll(i), fd, h, EPOLLIN | EPOLLEXCLUSIVE)) return -errno;
  return 0;
}

}  // namespace pfwd
