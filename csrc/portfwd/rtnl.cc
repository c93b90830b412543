#include "rtnl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include <initializer_list>

#include "../core/fd.h"

namespace pfwd {

namespace {

constexpr int kLoopbackIfindex = 1;  // lo is always the first link of a namespace (net/core/dev.c)

struct Request {
  nlmsghdr h;
  union {
    ifaddrmsg ifa;
    rtmsg rt;
    fib_rule_hdr rule;
  };
  char attrs[64];
};

void AddAttr(Request* r, int type, const void* data, int len) {
  auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(r) + NLMSG_ALIGN(r->h.nlmsg_len));
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

int Send(int nl, Request* r) {
  static unsigned seq;
  r->h.nlmsg_seq = ++seq;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(nl, r, r->h.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : 0;
}

// Reads replies until the dump ends (or the ack of a request): each message is
// passed to `fn` (if any) until it returns true (found). 0, 1 (found) or -errno.
template <typename Fn>
int Receive(int nl, Fn fn) {
  alignas(nlmsghdr) char buf[16384];
  bool found = false;
  for (;;) {
    ssize_t n;
    do n = recv(nl, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return found ? 1 : 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err) return err;
        return found ? 1 : 0;  // the ack of a request
      }
      if (!found && fn(h)) found = true;  // keep reading: the dump must be drained
    }
  }
}

int Dump(int nl, int type, int family) {
  Request r{};
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  r.h.nlmsg_type = type;
  r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  r.rt.rtm_family = family;
  return Send(nl, &r);
}

// Copies an IPv4/IPv6 address attribute into a sockaddr.
void ToSockaddr(int family, const rtattr* a, sockaddr_storage* out) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(out);
    s->sin_family = AF_INET;
    memcpy(&s->sin_addr, RTA_DATA(a), sizeof s->sin_addr);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(out);
    s->sin6_family = AF_INET6;
    memcpy(&s->sin6_addr, RTA_DATA(a), sizeof s->sin6_addr);
  }
}

int AddressFamily(int nl, int family, sockaddr_storage* out) {
  int rc = Dump(nl, RTM_GETADDR, family);
  if (rc < 0) return rc;
  return Receive(nl, [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return false;
    auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(h));
    if (ifa->ifa_family != family || ifa->ifa_scope != RT_SCOPE_UNIVERSE) return false;
    const rtattr* addr = nullptr;
    int len = IFA_PAYLOAD(h);
    for (auto* a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      // IFA_LOCAL is the address itself on point-to-point links, IFA_ADDRESS elsewhere.
      if (a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && !addr)) addr = a;
    }
    if (!addr) return false;
    ToSockaddr(family, addr, out);
    if (family == AF_INET6 && IN6_IS_ADDR_MULTICAST(&reinterpret_cast<sockaddr_in6*>(out)->sin6_addr)) return false;
    return true;
  });
}

// A request with an ack: 0, or -errno (-EEXIST when present already).
int Change(int nl, Request* r) {
  r->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  int rc = Send(nl, r);
  return rc < 0 ? rc : Receive(nl, [](nlmsghdr*) { return false; });
}

int AddRule(int nl, int family) {
  Request r{};
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(fib_rule_hdr));
  r.h.nlmsg_type = RTM_NEWRULE;
  r.rule.family = family;
  r.rule.action = FR_ACT_TO_TBL;
  r.rule.table = RT_TABLE_UNSPEC;  // the 32-bit FRA_TABLE below
  unsigned mark = kTransparentMark, table = kTransparentTable, prio = kTransparentRulePriority;
  AddAttr(&r, FRA_FWMARK, &mark, sizeof mark);
  AddAttr(&r, FRA_TABLE, &table, sizeof table);
  AddAttr(&r, FRA_PRIORITY, &prio, sizeof prio);
  return Change(nl, &r);
}

int AddLocalDefault(int nl, int family) {
  Request r{};
  r.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  r.h.nlmsg_type = RTM_NEWROUTE;
  r.rt.rtm_family = family;
  r.rt.rtm_table = RT_TABLE_UNSPEC;
  r.rt.rtm_protocol = RTPROT_STATIC;
  r.rt.rtm_scope = RT_SCOPE_HOST;
  r.rt.rtm_type = RTN_LOCAL;
  unsigned table = kTransparentTable;
  int oif = kLoopbackIfindex;
  AddAttr(&r, RTA_TABLE, &table, sizeof table);
  AddAttr(&r, RTA_OIF, &oif, sizeof oif);
  return Change(nl, &r);
}

}  // namespace

int RtnlOpen() {
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  return nl < 0 ? -errno : nl;
}

int FirstGlobalAddress(int nl, sockaddr_storage* out) {
  for (int family : {AF_INET, AF_INET6}) {
    int rc = AddressFamily(nl, family, out);
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  return -ENOENT;
}

int DefaultGateway(int nl, int family, sockaddr_storage* out) {
  int rc = Dump(nl, RTM_GETROUTE, family);
  if (rc < 0) return rc;
  rc = Receive(nl, [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return false;
    auto* rt = static_cast<rtmsg*>(NLMSG_DATA(h));
    if (rt->rtm_family != family || rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST) return false;
    unsigned table = rt->rtm_table;
    const rtattr* gw = nullptr;
    int len = RTM_PAYLOAD(h);
    for (auto* a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == RTA_TABLE) memcpy(&table, RTA_DATA(a), sizeof table);
      if (a->rta_type == RTA_GATEWAY) gw = a;
    }
    if (table != RT_TABLE_MAIN || !gw) return false;
    ToSockaddr(family, gw, out);
    return true;
  });
  return rc < 0 ? rc : rc == 1 ? 0 : -ENOENT;
}

int SetUpTransparentRouting(int nl) {
  for (int family : {AF_INET, AF_INET6}) {
    int rc = AddRule(nl, family);
    if (rc == 0 || rc == -EEXIST) rc = AddLocalDefault(nl, family);
    if (rc == -EEXIST) continue;
    // A namespace without IPv6 (ipv6.disable=1) refuses the family: IPv4 alone will do.
    if (rc < 0 && !(family == AF_INET6 && (rc == -EAFNOSUPPORT || rc == -EOPNOTSUPP))) return rc;
  }
  // An accepted connection takes the mark of its SYN (tcp_fwmark_accept, ip-sysctl.rst),
  // so the server's replies to a transparent dial find the rule above.
  // /proc/sys/net is the calling thread's namespace's (a thread that joined it sees it).
  podnet::Fd f(open("/proc/sys/net/ipv4/tcp_fwmark_accept", O_WRONLY | O_CLOEXEC));
  if (!f) return -errno;
  if (write(f.get(), "1", 1) != 1) return -errno;
  return 0;
}

}  // namespace pfwd
