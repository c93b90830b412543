#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/sysinfo.h>

#include <vector>

namespace pfwd {

std::atomic<int> g_load[kMaxLoops];

namespace {

int g_epolls[kMaxLoops];
int g_nloops = 1;
thread_local int t_index = 0;
thread_local std::vector<Handler*> t_dead;

void* LoopMain(void* arg) {
  t_index = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  for (;;) RunOnce(-1);
}

}  // namespace

int InitLoops() {
  int n = get_nprocs();
  g_nloops = n < 1 ? 1 : n > kMaxLoops ? kMaxLoops : n;
  for (int i = 0; i < g_nloops; i++) {
    g_epolls[i] = epoll_create1(EPOLL_CLOEXEC);
    if (g_epolls[i] < 0) return -errno;
  }
  return 0;
}

int LoopCount() { return g_nloops; }
int ThisLoop() { return t_index; }
int ThisEpoll() { return g_epolls[t_index]; }
int LoopEpoll(int i) { return g_epolls[i]; }

bool Watch(int ep, int fd, Handler* h, uint32_t ev) {
  epoll_event e{};
  e.events = ev;
  e.data.ptr = h;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0;
}

void DestroyLater(Handler* h) { t_dead.push_back(h); }

int StartLoopThreads() {
  for (int i = 1; i < g_nloops; i++) {
    pthread_t t;
    int e = pthread_create(&t, nullptr, LoopMain, reinterpret_cast<void*>(static_cast<intptr_t>(i)));
    if (e) return -e;
    pthread_detach(t);
  }
  return 0;
}

int RunOnce(int timeoutMs) {
  epoll_event evs[128];
  int n = epoll_wait(g_epolls[t_index], evs, 128, timeoutMs);
  if (n < 0 && errno != EINTR) return -errno;
  for (int i = 0; i < n; i++) static_cast<Handler*>(evs[i].data.ptr)->OnEvent(evs[i].events);
  for (Handler* h : t_dead) h->Destroy();
  t_dead.clear();
  return 0;
}

}  // namespace pfwd
