#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

namespace podnet {
namespace native {

void NlBatch::Begin(uint16_t type, uint16_t flags, const void* hdr, size_t hdrLen, bool ack) {
  if (!starts_.empty()) End();
  cur_ = buf_.size();
  starts_.push_back(cur_);
  acked_.push_back(ack);
  buf_.resize(cur_ + NLMSG_HDRLEN + NLMSG_ALIGN(hdrLen), 0);
  auto* n = reinterpret_cast<nlmsghdr*>(&buf_[cur_]);
  n->nlmsg_type = type;
  n->nlmsg_flags = flags | NLM_F_REQUEST | (ack ? NLM_F_ACK : 0);
  memcpy(&buf_[cur_ + NLMSG_HDRLEN], hdr, hdrLen);
}

void NlBatch::End() {
  auto* n = reinterpret_cast<nlmsghdr*>(&buf_[cur_]);
  n->nlmsg_len = buf_.size() - cur_;
}

void NlBatch::Put(uint16_t type, const void* data, size_t len) {
  size_t at = buf_.size();
  buf_.resize(at + RTA_SPACE(len), 0);
  auto* a = reinterpret_cast<rtattr*>(&buf_[at]);
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  if (len) memcpy(RTA_DATA(a), data, len);
}

void NlBatch::PutRaw(const void* data, size_t len) {
  size_t at = buf_.size();
  buf_.resize(at + NLMSG_ALIGN(len), 0);
  memcpy(&buf_[at], data, len);
}

size_t NlBatch::NestBegin(uint16_t type) {
  size_t at = buf_.size();
  Put(type, nullptr, 0);
  return at;
}

void NlBatch::NestEnd(size_t at) { reinterpret_cast<rtattr*>(&buf_[at])->rta_len = buf_.size() - at; }

int Netlink::Open(Netlink* out, int protocol) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) return -errno;
  *out = Netlink(fd);
  return 0;
}

namespace {

// Reads replies to the requests numbered from `first` (`acked[i]`: request i
// asked for an ACK) until every ACK or error came. An error for a request that
// asked for none ends the read: nf_tables answers a batch refused as a whole
// (EPERM, no such subsystem) once, for its BATCH_BEGIN. Calls `onData` for
// data messages.
template <typename F>
int ReadReplies(int fd, uint32_t first, const std::vector<bool>& acked, size_t* failed, const std::vector<int>& ignore,
                F onData) {
  const size_t total = acked.size(), n = std::count(acked.begin(), acked.end(), true);
  std::vector<char> buf(32768);
  size_t done = 0;
  int rc = 0;
  while (done < n) {
    ssize_t got = recv(fd, buf.data(), buf.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, got); h = NLMSG_NEXT(h, got)) {
      if (h->nlmsg_seq < first || h->nlmsg_seq >= first + total) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        int err = -e->error;
        const size_t i = h->nlmsg_seq - first;
        if (!acked[i]) {
          if (err == 0) continue;
          if (failed) *failed = i;
          return -err;
        }
        if (err != 0 && rc == 0 && std::find(ignore.begin(), ignore.end(), err) == ignore.end()) {
          rc = -err;
          if (failed) *failed = i;
        }
        done++;
      } else if (h->nlmsg_type == NLMSG_DONE) {
        done++;
      } else {
        onData(h);
      }
    }
  }
  return rc;
}

}  // namespace

int Netlink::Run(NlBatch& b, size_t* failed, std::vector<int> ignore) {
  if (b.empty()) return 0;
  b.End();
  uint32_t first = seq_;
  for (size_t s : b.starts_) reinterpret_cast<nlmsghdr*>(&b.buf_[s])->nlmsg_seq = seq_++;
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd_.get(), b.buf_.data(), b.buf_.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return -errno;
  return ReadReplies(fd_.get(), first, b.acked_, failed, ignore, [](nlmsghdr*) {});
}

int Netlink::IfIndex(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return -EINVAL;
  NlBatch b;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.Begin(RTM_GETLINK, 0, &ifi, sizeof ifi);
  b.PutStr(IFLA_IFNAME, name);
  uint32_t ext = RTEXT_FILTER_SKIP_STATS;
  b.PutU32(IFLA_EXT_MASK, ext);
  b.End();
  uint32_t seq = seq_++;
  reinterpret_cast<nlmsghdr*>(b.buf_.data())->nlmsg_seq = seq;
  // A GETLINK reply is the link message followed by the ACK.
  if (send(fd_.get(), b.buf_.data(), b.buf_.size(), 0) < 0) return -errno;
  int index = -ENODEV;
  int rc = ReadReplies(fd_.get(), seq, {true}, nullptr, {}, [&](nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) index = static_cast<ifinfomsg*>(NLMSG_DATA(h))->ifi_index;
  });
  return rc < 0 ? rc : index;
}

int Netlink::Addresses(int ifindex, std::vector<IpAddr>* out) {
  NlBatch b;
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  b.Begin(RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
  b.End();
  uint32_t seq = seq_++;
  reinterpret_cast<nlmsghdr*>(b.buf_.data())->nlmsg_seq = seq;
  if (send(fd_.get(), b.buf_.data(), b.buf_.size(), 0) < 0) return -errno;
  return ReadReplies(fd_.get(), seq, {true}, nullptr, {}, [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    auto* m = static_cast<ifaddrmsg*>(NLMSG_DATA(h));
    if (static_cast<int>(m->ifa_index) != ifindex) return;
    int len = IFA_PAYLOAD(h);
    for (auto* a = IFA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type != IFA_ADDRESS) continue;
      IpAddr ip;
      ip.family = m->ifa_family;
      memcpy(ip.b, RTA_DATA(a), ip.len());
      out->push_back(ip);
    }
  });
}

bool ParseIp(const std::string& s, IpAddr* out) {
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.b) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, s.c_str(), a.b) == 1) {
    a.family = AF_INET6;
  } else {
    return false;
  }
  *out = a;
  return true;
}

std::string FormatIp(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(a.family, a.b, buf, sizeof buf)) return "";
  return buf;
}

}  // namespace native
}  // namespace podnet
