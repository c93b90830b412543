// Address allocation on disk, in the manner of CNI's host-local plugin
// (plugins/ipam/host-local/backend/disk): one file per leased address holding
// its owner, plus a last-reserved hint per family so the next allocation
// starts right after the previous one (O(1) while the pool is not full).
// A lease is made by writing the owner to a temporary file and link(2)ing it
// to the address's name: link fails with EEXIST when another process holds
// the address, so processes never share an address and no global lock is
// needed; a crash leaves either no lease or a complete one.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

namespace podnet {
namespace native {

std::string NetStateDir(const Config& cfg, const std::string& network) { return cfg.stateDir + "/networks/" + network; }

std::string OwnerText(const std::string& containerId, const std::string& ifname) {
  return containerId + "\n" + ifname + "\n";
}

namespace {

// How many candidates one allocation tries before calling the pool exhausted
// (the whole range for IPv4 subnets; IPv6 ranges are astronomically large).
constexpr unsigned kMaxTries = 1u << 20;

std::string HintPath(const std::string& dir, int family) {
  return dir + (family == AF_INET ? "/last_reserved_ip.4" : "/last_reserved_ip.6");
}

// Tries to lease `ip`: 0, -EEXIST when held, or another -errno.
int Take(const std::string& dir, const std::string& tmp, const IpAddr& ip) {
  return link(tmp.c_str(), (dir + "/" + FormatIp(ip)).c_str()) == 0 ? 0 : -errno;
}

}  // namespace

int Allocate(const Config& cfg, const Net& net, const std::vector<IpAddr>& statics, const std::string& owner,
             std::vector<IpAddr>* out, Error* err) {
  const std::string dir = NetStateDir(cfg, net.def.name);
  int rc = MkdirP(dir, 0700);
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "cannot create IPAM directory " + dir);
  // Every static address must fall inside one of the network's subnets.
  for (const auto& s : statics) {
    bool inside = false;
    for (const auto& p : net.prefixes) inside = inside || Contains(p, s);
    if (!inside)
      return Fail(err, ErrorKind::kInvalid, -EINVAL,
                  "address " + FormatIp(s) + " is outside the subnets of network " + net.def.name);
  }
  const std::string tmp = TempName(dir);
  {
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(err, ErrorKind::kSystem, -errno, "cannot write lease in " + dir);
    ssize_t n = write(fd, owner.data(), owner.size());
    int e = n == static_cast<ssize_t>(owner.size()) ? 0 : (n < 0 ? -errno : -EIO);
    close(fd);
    if (e < 0) {
      unlink(tmp.c_str());
      return Fail(err, ErrorKind::kSystem, e, "cannot write lease in " + dir);
    }
  }
  std::vector<IpAddr> got;
  auto undo = [&]() {
    for (const auto& ip : got) unlink((dir + "/" + FormatIp(ip)).c_str());
  };
  for (size_t i = 0; i < net.prefixes.size() && rc == 0; i++) {
    const Prefix& p = net.prefixes[i];
    const IpAddr& gw = net.gateways[i];
    const IpAddr* wanted = nullptr;
    for (const auto& s : statics)
      if (Contains(p, s)) wanted = &s;
    if (wanted) {
      unsigned __int128 v = ToU128(*wanted), base = ToU128(p.base);
      unsigned __int128 size = static_cast<unsigned __int128>(1) << (p.base.len() * 8 - p.bits);
      if (v == base || v == ToU128(gw) || (p.base.family == AF_INET && v == base + size - 1)) {
        rc = Fail(err, ErrorKind::kInvalid, -EINVAL,
                  "address " + FormatIp(*wanted) + " is reserved in network " + net.def.name);
        break;
      }
      rc = Take(dir, tmp, *wanted);
      if (rc == -EEXIST) {
        rc = Fail(err, ErrorKind::kAddressInUse, -EEXIST,
                  "address " + FormatIp(*wanted) + " is already in use on network " + net.def.name);
      } else if (rc < 0) {
        rc = Fail(err, ErrorKind::kSystem, rc, "cannot lease " + FormatIp(*wanted));
      } else {
        got.push_back(*wanted);
      }
      continue;
    }
    // Hosts are base+1 .. base+size-2 (IPv4 broadcast excluded; for IPv6 the
    // last address is kept out as well, harmlessly).
    unsigned __int128 base = ToU128(p.base);
    unsigned __int128 size = static_cast<unsigned __int128>(1) << (p.base.len() * 8 - p.bits);
    unsigned __int128 hosts = size - 2;
    unsigned __int128 start = 0;  // offset from base+1
    std::string hint;
    IpAddr last;
    if (ReadFile(HintPath(dir, p.base.family), &hint) == 0 && ParseIp(hint, &last) && Contains(p, last)) {
      unsigned __int128 off = ToU128(last) - base;  // 1-based
      start = off >= hosts ? 0 : off;               // the one after the hint
    }
    unsigned __int128 tries = hosts < kMaxTries ? hosts : kMaxTries;
    bool leased = false;
    for (unsigned __int128 t = 0; t < tries; t++) {
      IpAddr cand = FromU128(p.base.family, base + 1 + (start + t) % hosts);
      if (ToU128(cand) == ToU128(gw)) continue;
      int r = Take(dir, tmp, cand);
      if (r == -EEXIST) continue;
      if (r < 0) {
        rc = Fail(err, ErrorKind::kSystem, r, "cannot lease " + FormatIp(cand));
        break;
      }
      got.push_back(cand);
      leased = true;
      // The hint is advisory: a lost or torn write only costs a longer search.
      WriteFileAtomic(HintPath(dir, p.base.family), FormatIp(cand));
      break;
    }
    if (rc == 0 && !leased)
      rc = Fail(err, ErrorKind::kPoolExhausted, -ENOSPC,
                "no free address left in subnet " + FormatPrefix(p) + " of network " + net.def.name);
  }
  unlink(tmp.c_str());
  if (rc < 0) {
    undo();
    return rc;
  }
  *out = got;
  return 0;
}

int Release(const Config& cfg, const std::string& network, const IpAddr& ip, const std::string& owner) {
  const std::string path = NetStateDir(cfg, network) + "/" + FormatIp(ip);
  if (!owner.empty()) {
    std::string held;
    int rc = ReadFile(path, &held);
    if (rc == -ENOENT) return 0;
    if (rc < 0) return rc;
    if (held != owner) return 0;  // someone else's now
  }
  return unlink(path.c_str()) == 0 || errno == ENOENT ? 0 : -errno;
}

int ListLeases(const Config& cfg, const std::string& network, std::vector<std::pair<IpAddr, std::string>>* out) {
  const std::string dir = NetStateDir(cfg, network);
  DIR* d = opendir(dir.c_str());
  if (!d) return errno == ENOENT ? 0 : -errno;
  while (dirent* e = readdir(d)) {
    IpAddr ip;
    if (!ParseIp(e->d_name, &ip)) continue;
    std::string owner;
    if (ReadFile(dir + "/" + e->d_name, &owner) < 0) continue;
    out->emplace_back(ip, owner);
  }
  closedir(d);
  return 0;
}

}  // namespace native
}  // namespace podnet
