// A native network's definition and its base rules: the nftables table shared
// by every native network (written once per network, the per-network parts
// in a chain of its own and elements of interval sets), the gateway addresses
// on the host, and an accept for podnet's interfaces in iptables' filter
// FORWARD chain when that chain exists (Docker sets its policy to DROP).
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "../lock.h"
#include "internal.h"
#include "nft.h"

extern char** environ;

namespace podnet {
namespace native {

using json = nlohmann::json;

int LoadNet(const Config& cfg, const std::string& name, Net* out, Error* err) {
  if (!ValidName(name)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network name '" + name + "'");
  const std::string path = cfg.networksDir + "/" + name + ".json";
  std::string text;
  int rc = ReadFile(path, &text);
  if (rc == -ENOENT) return Fail(err, ErrorKind::kNoNetwork, -ENOENT, "no native network " + name + " (" + path + ")");
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "cannot read " + path);
  Net net;
  try {
    json j = json::parse(text);
    net.def.name = j.at("name").get<std::string>();
    if (net.def.name != name) return Fail(err, ErrorKind::kInvalid, -EINVAL, path + " names network " + net.def.name);
    for (const auto& s : j.at("subnets")) {
      Subnet sub{s.at("subnet").get<std::string>(), s.value("gateway", "")};
      net.def.subnets.push_back(sub);
    }
    net.def.mtu = j.value("mtu", 0);
    net.def.internal = j.value("internal", false);
    net.def.isolate = j.value("isolate", true);
  } catch (const std::exception& e) {
    return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": " + e.what());
  }
  if (net.def.subnets.empty()) return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": no subnet");
  if (net.def.mtu != 0 && (net.def.mtu < 68 || net.def.mtu > 65535))
    return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": mtu out of range");
  std::set<int> families;
  for (const auto& s : net.def.subnets) {
    Prefix p;
    if (!ParsePrefix(s.subnet, &p)) return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": bad subnet " + s.subnet);
    // Room for a gateway and at least one sandbox.
    if (p.bits > (p.base.family == AF_INET ? 30 : 126))
      return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": subnet " + s.subnet + " is too small");
    if (!families.insert(p.base.family).second)
      return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": more than one subnet per IP family");
    IpAddr gw;
    if (s.gateway.empty()) {
      gw = FromU128(p.base.family, ToU128(p.base) + 1);
    } else if (!ParseIp(s.gateway, &gw) || !Contains(p, gw)) {
      return Fail(err, ErrorKind::kInvalid, -EINVAL, path + ": gateway " + s.gateway + " is outside " + s.subnet);
    }
    net.prefixes.push_back(p);
    net.gateways.push_back(gw);
  }
  *out = std::move(net);
  return 0;
}

int LoadNetwork(const Config& cfg, const std::string& name, Network* out, Error* err) {
  Net net;
  int rc = LoadNet(cfg, name, &net, err);
  if (rc == 0) {
    *out = net.def;
    for (size_t i = 0; i < net.def.subnets.size(); i++) out->subnets[i].gateway = FormatIp(net.gateways[i]);
  }
  return rc;
}

std::string NetChain(const std::string& network) { return "n-" + network; }

namespace {

// The table's fixed part. Every statement is idempotent ("add" of an existing
// object is a no-op; base chains are flushed and refilled in the same
// transaction), so concurrent processes may all write it.
// - hostports: published ports, one element per (host address,) protocol and
//   port in a map to the sandbox's address and port; Kubernetes' nftables
//   kube-proxy and netavark's `inet netavark` table do the same with maps.
// - prerouting/output: DNAT for traffic to a local address, from other hosts,
//   from sandboxes (hairpin) and from the host itself, 127.0.0.1 included
//   (the host end has route_localnet, as CNI portmap's `snat` sets on the bridge).
// - postrouting: masquerade what leaves a non-internal network for anything
//   but a native network; source-NAT DNATed connections from a sandbox (so a
//   sandbox reaching its own published port gets replies: netavark marks the
//   same connections in NETAVARK-HOSTPORT-SETMARK) and from 127.0.0.0/8 to the
//   gateway of the target's network (gw4/gw6: masquerade would pick any host
//   address, the host end having none).
// - forward: replies and published ports pass; a sandbox's new connections go
//   through its network's chain (by source subnet); nothing else may open a
//   connection to a sandbox.
const char* kBase = R"(add table inet podnet
add set inet podnet nets4 { type ipv4_addr; flags interval; }
add set inet podnet nets6 { type ipv6_addr; flags interval; }
add set inet podnet masq4 { type ipv4_addr; flags interval; }
add set inet podnet masq6 { type ipv6_addr; flags interval; }
add set inet podnet open4 { type ipv4_addr; flags interval; }
add set inet podnet open6 { type ipv6_addr; flags interval; }
add map inet podnet from4 { type ipv4_addr : verdict; flags interval; }
add map inet podnet from6 { type ipv6_addr : verdict; flags interval; }
add map inet podnet gw4 { type ipv4_addr : ipv4_addr; flags interval; }
add map inet podnet gw6 { type ipv6_addr : ipv6_addr; flags interval; }
add map inet podnet hp4 { type inet_proto . inet_service : ipv4_addr . inet_service; }
add map inet podnet hp6 { type inet_proto . inet_service : ipv6_addr . inet_service; }
add map inet podnet hpa4 { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
add map inet podnet hpa6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }
add chain inet podnet hostports
flush chain inet podnet hostports
add rule inet podnet hostports meta nfproto ipv4 meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport map @hpa4
add rule inet podnet hostports meta nfproto ipv4 meta l4proto { tcp, udp, sctp } dnat ip to meta l4proto . th dport map @hp4
add rule inet podnet hostports meta nfproto ipv6 meta l4proto { tcp, udp, sctp } dnat ip6 to ip6 daddr . meta l4proto . th dport map @hpa6
add rule inet podnet hostports meta nfproto ipv6 meta l4proto { tcp, udp, sctp } dnat ip6 to meta l4proto . th dport map @hp6
add chain inet podnet prerouting { type nat hook prerouting priority -100; policy accept; }
flush chain inet podnet prerouting
add rule inet podnet prerouting fib daddr type local jump hostports
add chain inet podnet output { type nat hook output priority -100; policy accept; }
flush chain inet podnet output
add rule inet podnet output fib daddr type local jump hostports
add chain inet podnet postrouting { type nat hook postrouting priority 100; policy accept; }
flush chain inet podnet postrouting
add rule inet podnet postrouting ct status dnat ip saddr @nets4 snat ip to ip daddr map @gw4
add rule inet podnet postrouting ct status dnat ip6 saddr @nets6 snat ip6 to ip6 daddr map @gw6
add rule inet podnet postrouting ct status dnat ip saddr 127.0.0.0/8 snat ip to ip daddr map @gw4
add rule inet podnet postrouting ip saddr @masq4 ip daddr != @nets4 masquerade
add rule inet podnet postrouting ip6 saddr @masq6 ip6 daddr != @nets6 masquerade
add chain inet podnet forward { type filter hook forward priority 0; policy accept; }
flush chain inet podnet forward
add rule inet podnet forward ct state established,related accept
add rule inet podnet forward ct status dnat accept
add rule inet podnet forward ip saddr vmap @from4
add rule inet podnet forward ip6 saddr vmap @from6
add rule inet podnet forward ip daddr @nets4 drop
add rule inet podnet forward ip6 daddr @nets6 drop
)";

// One network's chain and elements: its sandboxes reach their own subnets,
// other networks only when neither side isolates, and everything else unless
// the network is internal.
// Two transactions: nftables 1.0.6 cannot add a verdict-map element jumping to
// a chain created in the same transaction (ENOENT), so the elements go second.
std::string NetworkChain(const Net& net) {
  const std::string chain = NetChain(net.def.name);
  std::string s = "add chain inet podnet " + chain + "\nflush chain inet podnet " + chain + "\n";
  for (const auto& p : net.prefixes) {
    const bool v4 = p.base.family == AF_INET;
    const std::string ip = v4 ? "ip" : "ip6", sfx = v4 ? "4" : "6", cidr = FormatPrefix(p);
    s += "add rule inet podnet " + chain + " " + ip + " daddr " + cidr + " accept\n";
    if (!net.def.isolate && !net.def.internal)
      s += "add rule inet podnet " + chain + " " + ip + " daddr @open" + sfx + " accept\n";
    s += "add rule inet podnet " + chain + " " + ip + " daddr @nets" + sfx + " drop\n";
  }
  if (net.def.internal) s += "add rule inet podnet " + chain + " drop\n";
  return s;
}

std::string NetworkElements(const Net& net) {
  const std::string chain = NetChain(net.def.name);
  std::string s;
  for (const auto& p : net.prefixes) {
    const std::string sfx = p.base.family == AF_INET ? "4" : "6", cidr = FormatPrefix(p);
    s += "add element inet podnet nets" + sfx + " { " + cidr + " }\n";
    s += "add element inet podnet from" + sfx + " { " + cidr + " : jump " + chain + " }\n";
    s += "add element inet podnet gw" + sfx + " { " + cidr + " : " + FormatIp(net.gateways[&p - &net.prefixes[0]]) +
         " }\n";
    if (!net.def.internal) s += "add element inet podnet masq" + sfx + " { " + cidr + " }\n";
    if (!net.def.isolate && !net.def.internal) s += "add element inet podnet open" + sfx + " { " + cidr + " }\n";
  }
  return s;
}

// Runs argv to completion; 0 or -errno / -ECHILD when it exits non-zero.
int RunProgram(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int e = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) return -e;
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -errno;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

// iptables' filter FORWARD chain (iptables-nft keeps it in `table ip filter`)
// is a base chain of its own: a packet must pass it as well as ours, so a DROP
// policy there (Docker sets one) would drop every forwarded sandbox packet.
// Insert an accept for podnet's host ends there, as Docker and netavark's
// iptables driver do; our own table still does the filtering. Written with
// the iptables tool so iptables keeps understanding its table.
int EnsureIptablesAccept(bool v6, bool remove) {
  const char* table = v6 ? "ip6 filter" : "ip filter";
  const char* tool = v6 ? "ip6tables" : "iptables";
  std::string out, errText;
  if (NftRun(std::string("list chain ") + table + " FORWARD", &errText, &out) < 0) return 0;
  const bool present = out.find("\"pn*\"") != std::string::npos;
  if (present == !remove) return 0;
  for (const char* dir : {"-i", "-o"}) {
    int rc = RunProgram({tool, "-w", remove ? "-D" : "-I", "FORWARD", dir, "pn+", "-m", "comment", "--comment",
                         "podnet native networks", "-j", "ACCEPT"});
    if (rc < 0 && !remove) return rc;
  }
  return 0;
}

// Each gateway address lives on the host's lo: sandboxes reach the host
// there, and it is the host routes' preferred source.
int GatewayAddresses(const Net& net, bool remove) {
  Netlink nl(-1);
  int rc = Netlink::Open(&nl);
  if (rc < 0) return rc;
  NlBatch b;
  for (size_t i = 0; i < net.gateways.size(); i++) {
    const IpAddr& gw = net.gateways[i];
    ifaddrmsg ifa{};
    ifa.ifa_family = gw.family;
    ifa.ifa_prefixlen = gw.len() * 8;
    ifa.ifa_scope = RT_SCOPE_UNIVERSE;
    ifa.ifa_index = if_nametoindex("lo");
    b.Begin(remove ? RTM_DELADDR : RTM_NEWADDR, remove ? 0 : NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
    b.PutAddr(IFA_LOCAL, gw);
    b.PutAddr(IFA_ADDRESS, gw);
    b.PutU32(IFA_FLAGS, IFA_F_NODAD);
  }
  return nl.Run(b, nullptr, {EADDRNOTAVAIL, ENOENT, EEXIST});
}

int WriteSysctl(const char* path, const char* value) {
  std::string cur;
  if (ReadFile(path, &cur) == 0 && cur.compare(0, strlen(value), value) == 0) return 0;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, value, strlen(value));
  int e = n < 0 ? -errno : 0;
  close(fd);
  return e;
}

// A network's IPv6 subnet needs IPv6 on the host's new links (they take the
// `default` devconf): refused before anything is made, instead of the kernel's
// EACCES half-way through an attach ("IPv6 is disabled on this device").
int CheckIpv6(const Net& net, Error* err) {
  bool v6 = false;
  for (const auto& p : net.prefixes) v6 = v6 || p.base.family == AF_INET6;
  if (!v6) return 0;
  std::string off;
  if (ReadFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", &off) < 0)
    return Fail(
        err, ErrorKind::kUnsupported, -EAFNOSUPPORT,
        "network " + net.def.name + " has an IPv6 subnet, but this kernel has no IPv6 (booted with ipv6.disable=1)");
  if (off.compare(0, 1, "1") == 0)
    return Fail(err, ErrorKind::kUnsupported, -EAFNOSUPPORT,
                "network " + net.def.name +
                    " has an IPv6 subnet, but IPv6 is disabled on this host (net.ipv6.conf.default.disable_ipv6=1)");
  return 0;
}

std::mutex ensuredMu;
std::set<std::string> ensured;

// The table is shared by every process and state directory: writing a
// network's base rules and dropping the table with the last network take this
// lock, so a removal never drops the table under a network being written. A
// host without /run/lock (FHS 3.0, 5.9) goes unlocked.
Fd NftTableLock() {
  const char* step = nullptr;
  int fd = LockFileExclusive("/run/lock/podnet-nftables.lock", &step);
  return Fd(fd < 0 ? -1 : fd);
}

}  // namespace

int EnsureOnce(const Config& cfg, const Net& net, bool force, Error* err) {
  int rc = CheckIpv6(net, err);
  if (rc < 0) return rc;
  const std::string key = cfg.networksDir + "\n" + net.def.name;
  {
    std::lock_guard<std::mutex> g(ensuredMu);
    if (!force && ensured.count(key)) return 0;
  }
  if (!force && EnsureMarked(cfg, net)) {
    std::lock_guard<std::mutex> g(ensuredMu);
    ensured.insert(key);
    return 0;
  }
  std::string errText;
  Fd lock = NftTableLock();
  // A process without the lock (an older podnet) may drop the table between
  // the two transactions: write everything again then.
  for (int attempt = 0; attempt < 3; attempt++) {
    rc = NftRun(std::string(kBase) + NetworkChain(net), &errText);
    // One element at a time: adding an interval that is already there fails
    // with EEXIST (and would take a whole transaction down with it).
    const std::string elems = NetworkElements(net);
    for (size_t at = 0, nl; rc == 0 && at < elems.size(); at = nl + 1) {
      nl = elems.find('\n', at);
      rc = NftRun(elems.substr(at, nl - at), &errText);
      if (rc == -EEXIST) rc = 0;
    }
    if (rc != -ENOENT) break;
  }
  if (rc == -ENOPKG) return Fail(err, ErrorKind::kNoLibrary, rc, errText);
  if (rc == -EOPNOTSUPP || rc == -ENOENT)
    return Fail(err, ErrorKind::kUnsupported, rc, "the kernel refused podnet's nftables table: " + errText);
  if (rc < 0) return Fail(err, ErrorKind::kNftables, rc, "nftables: " + errText);
  bool v6 = false;
  for (const auto& p : net.prefixes) v6 = v6 || p.base.family == AF_INET6;
  // Sandboxes are routed, so the host forwards (as netavark and Docker enable).
  rc = WriteSysctl("/proc/sys/net/ipv4/ip_forward", "1");
  if (rc == 0 && v6) rc = WriteSysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "cannot enable IP forwarding");
  rc = GatewayAddresses(net, false);
  if (rc < 0)
    return Fail(err, ErrorKind::kSystem, rc, "cannot add the gateway addresses of " + net.def.name + " to lo");
  rc = EnsureIptablesAccept(false, false);
  if (rc == 0 && v6) rc = EnsureIptablesAccept(true, false);
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "cannot add podnet's accept to iptables' FORWARD chain");
  MarkEnsured(cfg, net);
  std::lock_guard<std::mutex> g(ensuredMu);
  ensured.insert(key);
  return 0;
}

int EnsureNetwork(const Config& cfg, const std::string& name, Error* err) {
  Net net;
  int rc = LoadNet(cfg, name, &net, err);
  return rc < 0 ? rc : EnsureOnce(cfg, net, true, err);
}

int Status(Error* err) {
  std::string errText, out;
  int rc = NftRun("list tables", &errText, &out);
  if (rc == -ENOPKG) return Fail(err, ErrorKind::kNoLibrary, rc, errText);
  if (rc < 0) return Fail(err, ErrorKind::kUnsupported, rc, "nftables is not usable: " + errText);
  return 0;
}

int RemoveNetwork(const Config& cfg, const std::string& name, Error* err) {
  Net net;
  int rc = LoadNet(cfg, name, &net, err);
  if (rc < 0) return rc;
  // Whatever is still attached goes first (leases, links, port elements).
  if ((rc = GC(cfg, name, {}, nullptr, err)) < 0) return rc;
  {
    std::lock_guard<std::mutex> g(ensuredMu);
    ensured.erase(cfg.networksDir + "\n" + name);
  }
  std::string cmds, errText;
  for (const auto& p : net.prefixes) {
    const std::string sfx = p.base.family == AF_INET ? "4" : "6", cidr = FormatPrefix(p);
    for (const char* set : {"nets", "masq", "open"})
      cmds += std::string("delete element inet podnet ") + set + sfx + " { " + cidr + " }\n";
    cmds += "delete element inet podnet from" + sfx + " { " + cidr + " }\n";
    cmds += "delete element inet podnet gw" + sfx + " { " + cidr + " }\n";
  }
  // Element by element: any of them may be absent (a network created internal).
  for (size_t at = 0, nl; at < cmds.size(); at = nl + 1) {
    nl = cmds.find('\n', at);
    NftRun(cmds.substr(at, nl - at), &errText);
  }
  rc = NftRun("delete chain inet podnet " + NetChain(name), &errText);
  if (rc == -ENOPKG) return Fail(err, ErrorKind::kNoLibrary, rc, errText);
  GatewayAddresses(net, true);
  // The table goes with the last network: no element left in nets4/nets6.
  // One list per call: nft 1.0.6 fails a second `list set` in the same run
  // with ENOENT (its cache), which kept the table forever.
  std::string out4, out6;
  Fd lock = NftTableLock();
  if (NftRun("list set inet podnet nets4", &errText, &out4) == 0 &&
      NftRun("list set inet podnet nets6", &errText, &out6) == 0 &&
      (out4 + out6).find("elements") == std::string::npos) {
    NftRun("delete table inet podnet", &errText);
    EnsureIptablesAccept(false, true);
    EnsureIptablesAccept(true, true);
  }
  // The IPAM directory (leases were released by Detach or gc).
  const std::string dir = NetStateDir(cfg, name);
  unlink((dir + "/last_reserved_ip.4").c_str());
  unlink((dir + "/last_reserved_ip.6").c_str());
  unlink((dir + "/.ensured").c_str());
  rmdir((dir + "/attachments").c_str());
  rmdir(dir.c_str());
  return 0;
}

}  // namespace native
}  // namespace podnet
