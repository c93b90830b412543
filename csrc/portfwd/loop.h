// The forwarder's event loops: epoll, edge-triggered where it matters, one
// loop per CPU (at most kMaxLoops; the main thread's is loop 0). Handlers
// freed during a round are destroyed after it (events of the same batch may
// still point at them).
#pragma once

#include <stdint.h>

#include <atomic>

namespace pfwd {

constexpr int kMaxLoops = 4;

struct Handler {
  virtual ~Handler() = default;
  virtual void OnEvent(uint32_t ev) = 0;
  virtual void Destroy() { delete this; }
};

// Creates the loops' epolls (count from the CPUs): 0 or -errno.
int InitLoops();
int LoopCount();
// The calling thread's loop index and epoll.
int ThisLoop();
int ThisEpoll();
int LoopEpoll(int i);
// Open connections served by each loop (they are spread to the least loaded).
extern std::atomic<int> g_load[kMaxLoops];

bool Watch(int ep, int fd, Handler* h, uint32_t ev);
// Frees `h` after the current round of this thread's loop.
void DestroyLater(Handler* h);
// Starts the threads of loops 1.. : 0 or -errno.
int StartLoopThreads();
// One round of the calling thread's loop: 0 or -errno (epoll_wait failed).
int RunOnce(int timeoutMs);

}  // namespace pfwd
