#include "userns_socket.h"

#include <errno.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fork.h"
#include "scm_rights.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace podnet {

namespace {

// What Start's child reports once: its step and errno packed into the one int
// of payload (errno < 4096), 0 when it joined both namespaces.
enum Step : int { kOk, kSignals, kJoinUser, kJoinNet, kSocket };
const char* const kStepNames[] = {"", "sigprocmask", "setns(CLONE_NEWUSER)", "setns(CLONE_NEWNET)", "socket"};

int Pack(Step step, int err) { return step << 16 | err; }

struct Request {
  int domain, type, protocol, n;
};

// Keeps only `keep` open. close_range(2) (Linux 5.9) with a loop as fallback.
void CloseAllBut(int keep, int max_fd) {
  if (keep > 0 && syscall(SYS_close_range, 0U, keep - 1U, 0U) != 0) {
    for (int fd = 0; fd < keep; fd++) close(fd);
  }
  if (syscall(SYS_close_range, keep + 1U, ~0U, 0U) != 0) {
    for (int fd = keep + 1; fd < max_fd; fd++) close(fd);
  }
}

// The child: async-signal-safe calls only (it was forked from a multithreaded
// process). It ends on its channel's EOF.
[[noreturn]] void ChildMain(int chan, int userns_fd, int netns_fd, int reset_err, int max_fd) {
  int hello = 0;
  if (reset_err < 0) {
    hello = Pack(kSignals, -reset_err);
  } else if (setns(userns_fd, CLONE_NEWUSER) != 0) {
    hello = Pack(kJoinUser, errno);
  } else if (setns(netns_fd, CLONE_NEWNET) != 0) {
    hello = Pack(kJoinNet, errno);
  }
  CloseAllBut(chan, max_fd);
  if (SendFds(chan, hello, nullptr, 0) != 0 || hello != 0) _exit(1);
  for (;;) {
    Request rq;
    ssize_t r = recv(chan, &rq, sizeof rq, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r != sizeof rq) _exit(0);  // the owner closed the channel, or is gone
    int fds[kMaxPassedFds];
    int n = rq.n < 0 ? 0 : rq.n > kMaxPassedFds ? kMaxPassedFds : rq.n;
    int made = 0, err = 0;
    for (; made < n; made++) {
      fds[made] = socket(rq.domain, rq.type | SOCK_CLOEXEC, rq.protocol);
      if (fds[made] < 0) {
        err = errno;
        break;
      }
    }
    int sent = SendFds(chan, made > 0 ? 0 : err, fds, made);
    for (int i = 0; i < made; i++) close(fds[i]);
    if (sent != 0) _exit(0);
  }
}

}  // namespace

int UsernsSocketMaker::Start(int userns_fd, int netns_fd) {
  Stop();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    failed_step_ = "socketpair";
    return -errno;
  }
  long open_max = sysconf(_SC_OPEN_MAX);  // for the fallback only; not callable in the child
  const int max_fd = open_max > 0 && open_max < 65536 ? static_cast<int>(open_max) : 65536;
  int reset_err = 0;
  pid_t pid = ForkResetSignals(&reset_err);
  if (pid == 0) ChildMain(sv[1], userns_fd, netns_fd, reset_err, max_fd);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    failed_step_ = "fork";
    return pid;
  }
  chan_ = sv[0];
  pid_ = pid;
  int hello = 0, fds[kMaxPassedFds];
  int n = RecvFds(chan_, &hello, fds);
  if (n < 0) {
    Stop();
    failed_step_ = "recvmsg";
    return n;
  }
  for (int i = 0; i < n; i++) close(fds[i]);  // none expected
  if (hello != 0) {
    Stop();
    int step = hello >> 16;
    failed_step_ = kStepNames[step >= kSignals && step <= kSocket ? step : kSocket];
    return -(hello & 0xffff);
  }
  failed_step_ = "";
  return 0;
}

int UsernsSocketMaker::Make(int domain, int type, int protocol, int n, int* out) {
  if (chan_ < 0) {
    failed_step_ = "recvmsg";
    return -ECONNRESET;
  }
  Request rq{domain, type, protocol, n};
  ssize_t w;
  do w = send(chan_, &rq, sizeof rq, MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w != sizeof rq) {
    failed_step_ = "sendmsg";
    return w < 0 ? -errno : -EIO;
  }
  int err = 0;
  int got = RecvFds(chan_, &err, out);
  if (got < 0) {
    failed_step_ = "recvmsg";
    return got;
  }
  if (got == 0) {
    failed_step_ = "socket";
    return -(err ? err : EIO);
  }
  return got;
}

void UsernsSocketMaker::Stop() {
  if (chan_ >= 0) close(chan_);
  chan_ = -1;
  if (pid_ > 0) {
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

int SocketsInUserns(int userns_fd, int netns_fd, int domain, int type, int n, int* out, int protocol,
                    const char** failed_step) {
  UsernsSocketMaker maker;
  int rc = maker.Start(userns_fd, netns_fd);
  if (rc == 0) rc = maker.Make(domain, type, protocol, n, out);
  if (failed_step) *failed_step = maker.failed_step();
  return rc;
}

}  // namespace podnet
