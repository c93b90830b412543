#include "link_stats.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>

namespace podnet {

namespace {

std::atomic<uint32_t> g_seq{1};

// Copies a struct rtnl_link_stats64 attribute (older kernels report fewer
// fields: missing ones stay zero).
void CopyCounters(const rtattr* a, LinkCounters* out) {
  struct rtnl_link_stats64 st = {};
  memcpy(&st, RTA_DATA(a), std::min<size_t>(RTA_PAYLOAD(a), sizeof st));
  const uint64_t v[kNumLinkCounters] = {
      st.rx_packets,       st.tx_packets,        st.rx_bytes,          st.tx_bytes,        st.rx_errors,
      st.tx_errors,        st.rx_dropped,        st.tx_dropped,        st.multicast,       st.collisions,
      st.rx_length_errors, st.rx_over_errors,    st.rx_crc_errors,     st.rx_frame_errors, st.rx_fifo_errors,
      st.rx_missed_errors, st.tx_aborted_errors, st.tx_carrier_errors, st.tx_fifo_errors,  st.tx_heartbeat_errors,
      st.tx_window_errors, st.rx_compressed,     st.tx_compressed,     st.rx_nohandler,
  };
  memcpy(out->counters, v, sizeof v);
}

// One RTM_NEWLINK message: false if malformed.
bool ParseLink(const nlmsghdr* h, bool skip_loopback, std::vector<LinkCounters>* out) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return false;
  const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
  if (skip_loopback && (ifi->ifi_flags & IFF_LOOPBACK)) return true;
  LinkCounters link;
  memset(link.counters, 0, sizeof link.counters);
  int len = static_cast<int>(IFLA_PAYLOAD(h));
  for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME) {
      link.name.assign(static_cast<const char*>(RTA_DATA(a)),
                       strnlen(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    } else if (a->rta_type == IFLA_STATS64) {
      CopyCounters(a, &link);
    }
  }
  out->push_back(std::move(link));
  return true;
}

}  // namespace

int ReadLinkStats(int nlfd, const std::string& ifname, std::vector<LinkCounters>* out, bool* socket_broken) {
  const bool dump = ifname.empty();
  *socket_broken = true;
  if (ifname.size() >= IFNAMSIZ) return -EINVAL;
  struct {
    nlmsghdr h;
    ifinfomsg ifi;
    char attrs[RTA_SPACE(IFNAMSIZ)];
  } req = {};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.ifi);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
  req.h.nlmsg_seq = g_seq.fetch_add(1, std::memory_order_relaxed);
  req.ifi.ifi_family = AF_UNSPEC;
  if (!dump) {
    auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) + NLMSG_ALIGN(req.h.nlmsg_len));
    a->rta_type = IFLA_IFNAME;
    a->rta_len = RTA_LENGTH(ifname.size() + 1);
    memcpy(RTA_DATA(a), ifname.c_str(), ifname.size() + 1);
    req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
  }
  ssize_t w;
  do w = send(nlfd, &req, req.h.nlmsg_len, 0);
  while (w < 0 && errno == EINTR);
  if (w < 0) return -errno;
  if (w != static_cast<ssize_t>(req.h.nlmsg_len)) return -EIO;

  // A dump's parts each fit a page-sized reply; 32 KiB holds several.
  alignas(nlmsghdr) static thread_local unsigned char buf[32768];
  const size_t first = out->size();
  for (;;) {
    ssize_t n;
    do n = recv(nlfd, buf, sizeof buf, MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (n == 0 || static_cast<size_t>(n) > sizeof buf) return -EMSGSIZE;
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != req.h.nlmsg_seq) continue;  // a stale reply to an earlier, failed request
      if (h->nlmsg_type == NLMSG_DONE) {
        *socket_broken = false;
        return 0;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EPROTO;
        *socket_broken = false;
        out->resize(first);
        return static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      }
      if (h->nlmsg_type != RTM_NEWLINK) continue;
      if (!ParseLink(h, dump, out)) return -EPROTO;
      if (!dump) {
        *socket_broken = false;
        return 0;
      }
    }
  }
}

}  // namespace podnet
