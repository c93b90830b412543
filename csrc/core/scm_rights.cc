#include "scm_rights.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

namespace podnet {

int SendFds(int chan, int payload, const int* fds, int n) {
  if (n < 0 || n > kMaxPassedFds) return -EINVAL;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
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
  ssize_t r;
  do r = sendmsg(chan, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  return r == sizeof payload ? 0 : -EIO;
}

int RecvFds(int chan, int* payload, int* fds) {
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  iovec iov{payload, sizeof *payload};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t r;
  do r = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (r == 0) return -ECONNRESET;
  if (r != sizeof *payload) return -EIO;
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

}  // namespace podnet
