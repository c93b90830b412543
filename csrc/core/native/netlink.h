// Raw rtnetlink for the engine: requests are built into one buffer and sent
// with a single sendmsg, then every acknowledgement is read (a sandbox's
// addresses, neighbours and routes cost one round trip). Raw netlink rather
// than libnl here because the engine needs the kernel's errno unchanged (libnl
// maps it onto its own NLE_* codes) and batching; libnl stays for statistics.
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "../fd.h"

namespace podnet {
namespace native {

struct IpAddr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t b[16] = {};
  int len() const { return family == AF_INET ? 4 : 16; }
};

// Builds a batch of rtnetlink requests.
class NlBatch {
 public:
  // Starts a message; `hdr` (ifinfomsg, ifaddrmsg, rtmsg, ndmsg, nfgenmsg) is
  // copied after nlmsghdr. Without `ack` the kernel answers only on error (the
  // begin and end of an nf_tables batch, which it never acknowledges).
  void Begin(uint16_t type, uint16_t flags, const void* hdr, size_t hdrLen, bool ack = true);
  void Put(uint16_t type, const void* data, size_t len);
  void PutStr(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }
  void PutU32(uint16_t type, uint32_t v) { Put(type, &v, 4); }
  void PutAddr(uint16_t type, const IpAddr& a) { Put(type, a.b, a.len()); }
  size_t NestBegin(uint16_t type);
  void NestEnd(size_t at);
  // Appends raw bytes (a nested ifinfomsg) aligned.
  void PutRaw(const void* data, size_t len);
  size_t count() const { return starts_.size(); }
  bool empty() const { return starts_.empty(); }
  size_t bytes() const { return buf_.size(); }

 private:
  friend class Netlink;
  std::vector<char> buf_;
  std::vector<size_t> starts_;
  std::vector<bool> acked_;  // per request: whether it asked for an ACK
  size_t cur_ = 0;
  void End();
};

class Netlink {
 public:
  // Takes a netlink socket (made in the right namespace).
  explicit Netlink(int fd) : fd_(fd) {}
  // Opens one in the calling thread's namespace (NETLINK_ROUTE by default).
  static int Open(Netlink* out, int protocol = NETLINK_ROUTE);
  bool ok() const { return bool(fd_); }
  // Sends every request of `b` and reads all replies (an ACK or an error per
  // acknowledged request).
  // Returns 0 or the first -errno; `failed` gets its index. Errors listed in
  // `ignore` (positive errno values) count as success.
  int Run(NlBatch& b, size_t* failed = nullptr, std::vector<int> ignore = {});
  // The ifindex of `name`, or -errno (-ENODEV when absent).
  int IfIndex(const std::string& name);
  // The interface's addresses (family AF_UNSPEC for all).
  int Addresses(int ifindex, std::vector<IpAddr>* out);

 private:
  Fd fd_;
  uint32_t seq_ = 1;
};

bool ParseIp(const std::string& s, IpAddr* out);
std::string FormatIp(const IpAddr& a);

}  // namespace native
}  // namespace podnet
