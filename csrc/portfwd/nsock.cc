#include "nsock.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pfwd {

namespace {

constexpr int kBatch = 16;

struct Request { int family, type, n; };

bool IsGlobal(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (a >> 24) != 127 && (a >> 16) != 0xa9fe && a != 0;  // not loopback, link-local, any
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    return !IN6_IS_ADDR_LOOPBACK(&a) && !IN6_IS_ADDR_LINKLOCAL(&a) && !IN6_IS_ADDR_UNSPECIFIED(&a) &&
           !IN6_IS_ADDR_MULTICAST(&a);
  }
  return false;
}

// Sends `n` fds (and one int of payload) over a SOCK_SEQPACKET socket.
bool SendFds(int chan, int payload, const int* fds, int n) {
  char cbuf[CMSG_SPACE(sizeof(int) * kBatch)] = {};
  iovec iov{&payload, sizeof payload};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (n > 0) {
    mh.msg_control = cbuf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
  }
  return sendmsg(chan, &mh, MSG_NOSIGNAL) == sizeof payload;
}

// Receives what SendFds sent; returns the number of fds, -1 on error.
int RecvFds(int chan, int* payload, int* fds) {
  char cbuf[CMSG_SPACE(sizeof(int) * kBatch)] = {};
  iovec iov{payload, sizeof *payload};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t r;
  do r = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  if (r != sizeof *payload) return -1;
  int n = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds + n, CMSG_DATA(c), sizeof(int) * k);
      n += k;
    }
  }
  return n;
}

// The unprivileged helper: joins the namespaces, reports the global address,
// then serves socket batches until the forwarder goes away.
[[noreturn]] void HelperMain(int chan, int userns, int netns) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  int err = 0;
  if (setns(userns, CLONE_NEWUSER) != 0 || setns(netns, CLONE_NEWNET) != 0) err = errno;
  close(userns);
  close(netns);
  sockaddr_storage ss{};
  bool found = err == 0 && FindGlobalAddress(&ss);
  struct { int err; int found; sockaddr_storage ss; } hello{err, found, ss};
  if (send(chan, &hello, sizeof hello, MSG_NOSIGNAL) != sizeof hello || err) _exit(1);
  for (;;) {
    Request rq;
    ssize_t r = recv(chan, &rq, sizeof rq, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r != sizeof rq) _exit(0);  // forwarder gone
    int fds[kBatch];
    int n = MakeSockets(rq.family, rq.type, rq.n < kBatch ? rq.n : kBatch, fds);
    bool ok = SendFds(chan, n > 0 ? 0 : errno, fds, n);
    for (int i = 0; i < n; i++) close(fds[i]);
    if (!ok) _exit(0);
  }
}

struct ThreadJob {
  int netns;
  Request rq;
  int fds[kBatch];
  int made = 0;
  int err = 0;
  bool find = false;
  bool found = false;
  sockaddr_storage ss{};
};

// Runs on a fresh thread: join the namespace, do the job, exit (the thread
// dies in the namespace; nothing to restore).
void* ThreadMain(void* p) {
  auto* job = static_cast<ThreadJob*>(p);
  if (setns(job->netns, CLONE_NEWNET) != 0) {
    job->err = errno;
    return nullptr;
  }
  if (job->find) job->found = FindGlobalAddress(&job->ss);
  if (job->rq.n > 0) {
    job->made = MakeSockets(job->rq.family, job->rq.type, job->rq.n, job->fds);
    if (job->made == 0) job->err = errno;
  }
  return nullptr;
}

bool RunThread(ThreadJob* job) {
  pthread_t t;
  int e = pthread_create(&t, nullptr, ThreadMain, job);
  if (e != 0) { errno = e; return false; }
  pthread_join(t, nullptr);
  if (job->err) { errno = job->err; return false; }
  return true;
}

}  // namespace

int MakeSockets(int family, int type, int n, int* out) {
  int made = 0;
  for (; made < n; made++) {
    out[made] = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (out[made] < 0) break;
  }
  return made;
}

bool FindGlobalAddress(sockaddr_storage* out) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (int fam : {AF_INET, AF_INET6}) {
    for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != fam || !IsGlobal(i->ifa_addr)) continue;
      memcpy(out, i->ifa_addr, fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
      found = true;
    }
    if (found) break;
  }
  freeifaddrs(list);
  return found;
}

bool NsSockets::Open(const std::string& netns, const std::string& userns, std::string* code,
                     std::string* msg) {
  auto fail = [&](const std::string& what) {
    *code = strerrorname_np(errno) ? strerrorname_np(errno) : "EIO";
    *msg = what + ": " + strerror(errno);
    return false;
  };
  netns_ = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (netns_ < 0) return fail("open network namespace " + netns);
  if (userns.empty()) {
    ThreadJob job{netns_, {0, 0, 0}};
    if (!RunThread(&job)) return fail("join network namespace " + netns);
    return true;
  }
  userns_ = open(userns.c_str(), O_RDONLY | O_CLOEXEC);
  if (userns_ < 0) return fail("open user namespace " + userns);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return fail("socketpair");
  helper_ = fork();
  if (helper_ < 0) return fail("fork");
  if (helper_ == 0) {
    // Single-threaded child: keep only what it needs (not the ready/exit fds,
    // whose owner must see them close with the forwarder).
    close(sv[0]);
    close(0);
    close(3);
    close(4);
    HelperMain(sv[1], userns_, netns_);
  }
  close(sv[1]);
  close(userns_);
  userns_ = -1;
  chan_ = sv[0];
  struct { int err; int found; sockaddr_storage ss; } hello{};
  ssize_t r;
  do r = recv(chan_, &hello, sizeof hello, 0); while (r < 0 && errno == EINTR);
  if (r != sizeof hello) { errno = EPROTO; return fail("namespace helper died"); }
  if (hello.err) { errno = hello.err; return fail("join namespaces " + userns + " and " + netns); }
  if (hello.found) {
    found_ = true;
    found_addr_ = hello.ss;
  }
  return true;
}

bool NsSockets::FirstGlobal(sockaddr_storage* out) {
  if (chan_ >= 0) {
    if (found_) *out = found_addr_;
    return found_;
  }
  ThreadJob job{netns_, {0, 0, 0}};
  job.find = true;
  return RunThread(&job) && job.found && (*out = job.ss, true);
}

bool NsSockets::Refill(int family, int type) {
  std::vector<int>& pool = Pool(family, type);
  int fds[kBatch];
  int n;
  if (chan_ >= 0) {
    Request rq{family, type, kBatch};
    if (send(chan_, &rq, sizeof rq, MSG_NOSIGNAL) != sizeof rq) return false;
    int err = 0;
    n = RecvFds(chan_, &err, fds);
    if (n < 0) { errno = EPROTO; return false; }
    if (n == 0) { errno = err ? err : EIO; return false; }
  } else {
    ThreadJob job{netns_, {family, type, kBatch}};
    if (!RunThread(&job)) return false;
    n = job.made;
    memcpy(fds, job.fds, sizeof(int) * n);
  }
  pool.insert(pool.end(), fds, fds + n);
  return true;
}

int NsSockets::Take(int family, int type) {
  std::vector<int>& pool = Pool(family, type);
  if (pool.empty() && !Refill(family, type)) return -1;
  int fd = pool.back();
  pool.pop_back();
  return fd;
}

}  // namespace pfwd
