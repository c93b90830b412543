// EnsureOnce's memory across processes, for short-lived ones (the CNI plugin
// runs once per command). Writing a network's base rules costs about 10 ms
// here (libnftables transactions that list the ruleset, the iptables FORWARD
// check), more than the attachment itself, so a process that did it leaves a
// mark in the network's state directory. The mark holds while the boot and
// the definition file are the same and the network's chain is still in the
// kernel (one NFT_MSG_GETCHAIN, no libnftables): a reboot, a changed
// definition or a firewall reload that flushed the ruleset brings a full
// ensure again.
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fd.h"
#include "internal.h"

namespace podnet {
namespace native {
namespace {

std::string MarkPath(const Config& cfg, const Net& net) { return NetStateDir(cfg, net.def.name) + "/.ensured"; }

// What the mark must match: this boot, this definition file.
std::string Token(const Config& cfg, const Net& net) {
  std::string boot;
  if (ReadFile("/proc/sys/kernel/random/boot_id", &boot) < 0) return "";
  struct stat st;
  if (stat((cfg.networksDir + "/" + net.def.name + ".json").c_str(), &st) != 0) return "";
  return boot + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) +
         "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size) + "\n";
}

void PutAttr(char* buf, size_t* len, uint16_t type, const std::string& s) {
  auto* a = reinterpret_cast<nlattr*>(buf + *len);
  a->nla_type = type;
  a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + s.size() + 1);
  memcpy(buf + *len + NLA_HDRLEN, s.c_str(), s.size() + 1);
  *len += NLA_ALIGN(a->nla_len);
}

// 1 when chain `chain` of table inet podnet exists, 0 when not, -errno.
int ChainExists(const std::string& chain) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd) return -errno;
  alignas(nlmsghdr) char req[512] = {};
  auto* nh = reinterpret_cast<nlmsghdr*>(req);
  nh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nh->nlmsg_seq = 1;
  auto* nf = reinterpret_cast<nfgenmsg*>(req + NLMSG_HDRLEN);
  nf->nfgen_family = NFPROTO_INET;
  nf->version = NFNETLINK_V0;
  size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  PutAttr(req, &len, NFTA_CHAIN_TABLE, "podnet");
  PutAttr(req, &len, NFTA_CHAIN_NAME, chain);
  nh->nlmsg_len = static_cast<uint32_t>(len);
  if (send(fd.get(), req, len, 0) < 0) return -errno;
  alignas(nlmsghdr) char buf[8192];
  bool found = false;
  for (;;) {
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    for (auto* m = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(m, static_cast<size_t>(n)); m = NLMSG_NEXT(m, n)) {
      if (m->nlmsg_type == NLMSG_ERROR) {
        int e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(m))->error;
        if (e == 0) return found ? 1 : 0;  // the ACK ends the reply
        return e == -ENOENT ? 0 : e;
      }
      if (m->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN)) found = true;
    }
  }
}

}  // namespace

bool EnsureMarked(const Config& cfg, const Net& net) {
  std::string mark;
  if (ReadFile(MarkPath(cfg, net), &mark) < 0) return false;
  std::string token = Token(cfg, net);
  return !token.empty() && mark == token && ChainExists(NetChain(net.def.name)) == 1;
}

void MarkEnsured(const Config& cfg, const Net& net) {
  std::string token = Token(cfg, net);
  if (!token.empty() && MkdirP(NetStateDir(cfg, net.def.name), 0700) == 0) WriteFileAtomic(MarkPath(cfg, net), token);
}

}  // namespace native
}  // namespace podnet
