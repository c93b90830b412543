#include "nsocket.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>

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

struct EachJob {
  const int* nsfds;
  int n, domain, type, protocol;
  int* out;
  bool* joined;
};

bool SameNs(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

void* EnterEach(void* p) {
  auto* job = static_cast<EachJob*>(p);
  struct stat here;
  bool known = stat("/proc/thread-self/ns/net", &here) == 0;
  for (int i = 0; i < job->n; i++) {
    struct stat st;
    bool have = fstat(job->nsfds[i], &st) == 0;
    if (!(known && have && SameNs(here, st))) {
      if (setns(job->nsfds[i], CLONE_NEWNET) != 0) {
        job->out[i] = -errno;
        job->joined[i] = false;
        continue;
      }
      known = have;
      if (have) here = st;
    }
    job->joined[i] = true;
    int fd = socket(job->domain, job->type | SOCK_CLOEXEC, job->protocol);
    job->out[i] = fd >= 0 ? fd : -errno;
  }
  return nullptr;
}

}  // namespace

int SocketsInNetnsEach(const int* nsfds, int n, int domain, int type, int protocol, int* out, bool* joined) {
  EachJob job{nsfds, n, domain, type, protocol, out, joined};
  pthread_t t;
  int e = pthread_create(&t, nullptr, EnterEach, &job);
  if (e != 0) return -e;
  pthread_join(t, nullptr);
  return 0;
}

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
