#include "nsocket.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

namespace podnet {

namespace {

struct Job {
  int nsfd;
  int (*fn)(void*);
  void* arg;
  int rc;
};

// The thread ends inside the foreign namespace: nothing to restore.
void* Enter(void* p) {
  auto* job = static_cast<Job*>(p);
  job->rc = setns(job->nsfd, CLONE_NEWNET) == 0 ? job->fn(job->arg) : -errno;
  return nullptr;
}

struct SocketArgs {
  int domain, type, protocol;
};

int MakeSocket(void* p) {
  auto* a = static_cast<SocketArgs*>(p);
  int fd = socket(a->domain, a->type | SOCK_CLOEXEC, a->protocol);
  return fd >= 0 ? fd : -errno;
}

}  // namespace

int RunInNetns(int nsfd, int (*fn)(void*), void* arg) {
  Job job{nsfd, fn, arg, -EINVAL};
  pthread_t t;
  int e = pthread_create(&t, nullptr, Enter, &job);
  if (e != 0) return -e;
  pthread_join(t, nullptr);
  return job.rc;
}

int SocketInNetns(int nsfd, int domain, int type, int protocol) {
  SocketArgs a{domain, type, protocol};
  return RunInNetns(nsfd, MakeSocket, &a);
}

}  // namespace podnet
