#include "bulk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "loop.h"

namespace pfwd {

namespace {

// Bulk connections relayed by their own thread pair at most (more stay on the
// loops): bounds the threads, and the memory of their stacks, under many streams.
constexpr int kMaxBulk = 32;
constexpr size_t kBulkStack = 64 * 1024;

std::atomic<int> g_bulk{0};  // connections handed to thread pairs

struct Bulk {
  int fd[2];   // client, upstream
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

void SetBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); }

}  // namespace

bool HandOffBulk(int epoll, int loop, int client, int upstream, const Dir& up, const Dir& down) {
  if (g_bulk.fetch_add(1) >= kMaxBulk) {
    g_bulk--;
    return false;
  }
  auto* b = new Bulk;
  b->fd[0] = client;
  b->fd[1] = upstream;
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
  for (int fd : {client, upstream}) {
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
    SetBlocking(fd);
  }
  for (const Dir* d : {&up, &down})
    for (int fd : {d->pr, d->pw}) SetBlocking(fd);
  b->gate.unlock();
  pthread_detach(t[0]);
  pthread_detach(t[1]);
  return true;
}

}  // namespace pfwd
