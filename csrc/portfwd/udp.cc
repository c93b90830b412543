#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <list>
#include <map>
#include <string>

#include "loop.h"
#include "upstream.h"

namespace pfwd {

namespace {

Upstream* g_up = nullptr;
UdpLimits g_limits;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct UdpListener;
struct UdpFlow : Handler {
  UdpListener* l = nullptr;
  std::string key;
  int fd = -1;  // -1 once ended (an event of the same round may still arrive)
  sockaddr_storage peer{};
  socklen_t plen = 0;
  // Replies leave from the address the client sent to (a wildcard listener
  // would otherwise let routing pick another source, which the client drops).
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
  size_t ctllen = 0;
  int64_t last = 0;
  std::list<UdpFlow*>::iterator lru;
  void OnEvent(uint32_t) override;
};

// Every flow of every listener, most recently used first.
std::list<UdpFlow*> g_lru;

void Touch(UdpFlow* f) {
  f->last = NowMs();
  g_lru.splice(g_lru.begin(), g_lru, f->lru);
}

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

  void End(UdpFlow* f) {
    close(f->fd);  // drops it from the epoll
    f->fd = -1;
    flows.erase(f->key);
    g_lru.erase(f->lru);
    DestroyLater(f);
  }

  UdpFlow* NewFlow(const std::string& key, const sockaddr_storage& peer, socklen_t plen, const char* ctl,
                   size_t ctllen) {
    if (g_lru.size() >= g_limits.max_flows) {
      UdpFlow* oldest = g_lru.back();
      oldest->l->End(oldest);
    }
    int ufd = g_up->Dial(SOCK_DGRAM, nullptr, cport);
    if (ufd < 0) return nullptr;
    auto* f = new UdpFlow;
    f->l = this;
    f->key = key;
    f->fd = ufd;
    f->peer = peer;
    f->plen = plen;
    memcpy(f->ctl, ctl, ctllen);
    f->ctllen = ctllen;
    if (!Watch(ThisEpoll(), ufd, f, EPOLLIN)) {
      close(ufd);
      delete f;
      return nullptr;
    }
    f->lru = g_lru.insert(g_lru.begin(), f);
    flows[key] = f;
    return f;
  }

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
      auto it = flows.find(key);
      UdpFlow* f = it != flows.end() ? it->second : NewFlow(key, peer, mh.msg_namelen, ctl, ctllen);
      if (!f) continue;
      Touch(f);
      send(f->fd, buf, n, MSG_DONTWAIT);  // datagrams: drop when the queue is full
    }
  }
};

void UdpFlow::OnEvent(uint32_t) {
  static char buf[65536];
  while (fd >= 0) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return;  // EAGAIN, or ECONNREFUSED from an ICMP error: the flow stays until idle
    Touch(this);
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

}  // namespace

void InitUdp(Upstream* up, const UdpLimits& limits) {
  g_up = up;
  g_limits = limits;
}

int WatchUdpListener(int fd, int cport) {
  auto* h = new UdpListener;
  h->fd = fd;
  h->cport = cport;
  return Watch(ThisEpoll(), fd, h, EPOLLIN) ? 0 : -errno;
}

int SweepUdp() {
  int64_t now = NowMs();
  while (!g_lru.empty() && now - g_lru.back()->last >= g_limits.idle_ms) {
    UdpFlow* oldest = g_lru.back();
    oldest->l->End(oldest);
  }
  if (g_lru.empty()) return -1;
  return static_cast<int>(g_lru.back()->last + g_limits.idle_ms - now);
}

}  // namespace pfwd
