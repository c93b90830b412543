// Attach, Detach, Check and GC of one sandbox's attachment (see engine.h for
// the topology).
#include "engine.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "../fd.h"
#include "../netns.h"
#include "../nsocket.h"
#include "internal.h"
#include "nft.h"
#include "nft_elements.h"

namespace podnet {
namespace native {

using json = nlohmann::json;

namespace {

// Every host end has this MAC and so the IPv6 link-local address below; each
// veth is a link of its own, so sharing it is harmless, and a sandbox's
// neighbour entry for its gateway is a constant (Calico does the same).
const char* kHostMac = "ee:ee:ee:ee:ee:ee";
const char* kGateway6 = "fe80::ecee:eeff:feee:eeee";

bool ParseMac(const std::string& s, uint8_t out[6]) {
  unsigned v[6];
  char tail;
  if (s.size() != 17 ||
      sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    return false;
  for (int i = 0; i < 6; i++) out[i] = static_cast<uint8_t>(v[i]);
  return true;
}

std::string FormatMac(const uint8_t m[6]) {
  char buf[18];
  snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

std::string RecordDir(const Config& cfg, const std::string& network) {
  return NetStateDir(cfg, network) + "/attachments";
}

// ':' appears in neither a container id nor an interface name.
std::string RecordPath(const Config& cfg, const std::string& network, const std::string& cid,
                       const std::string& ifname) {
  return RecordDir(cfg, network) + "/" + cid + ":" + ifname + ".json";
}

json ToJson(const Attachment& a) {
  json j = {{"network", a.network}, {"containerId", a.containerId}, {"ifname", a.ifname}, {"hostIfname", a.hostIfname},
            {"mac", a.mac},         {"hostMac", a.hostMac},         {"mtu", a.mtu}};
  j["ips"] = json::array();
  for (const auto& ip : a.ips) j["ips"].push_back({{"address", ip.address}, {"gateway", ip.gateway}});
  j["routes"] = json::array();
  for (const auto& r : a.routes) j["routes"].push_back({{"dst", r.dst}, {"gw", r.gw}});
  j["ports"] = json::array();
  for (const auto& p : a.ports)
    j["ports"].push_back({{"protocol", p.protocol},
                          {"hostIp", p.hostIp},
                          {"hostPort", p.hostPort},
                          {"containerPort", p.containerPort},
                          {"range", p.range}});
  return j;
}

bool FromJson(const std::string& text, Attachment* a) {
  try {
    json j = json::parse(text);
    a->network = j.at("network");
    a->containerId = j.at("containerId");
    a->ifname = j.at("ifname");
    a->hostIfname = j.at("hostIfname");
    a->mac = j.at("mac");
    a->hostMac = j.value("hostMac", kHostMac);
    a->mtu = j.value("mtu", 0);
    for (const auto& ip : j.at("ips")) a->ips.push_back({ip.at("address"), ip.at("gateway")});
    for (const auto& r : j.at("routes")) a->routes.push_back({r.at("dst"), r.at("gw")});
    for (const auto& p : j.at("ports")) {
      PortMapping m;
      m.protocol = p.at("protocol");
      m.hostIp = p.at("hostIp");
      m.hostPort = p.at("hostPort");
      m.containerPort = p.at("containerPort");
      m.range = p.at("range");
      a->ports.push_back(m);
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The nftables elements of a sandbox's port mappings, keyed by map name:
// "key : address . port" strings (keys alone when `keysOnly`).
// Calls fn(map, hostIp or nullptr, mapping, port offset, sandbox address) for
// every element the mappings make: one per port of a range and address family.
template <typename F>
void ForEachPortElement(const std::vector<PortMapping>& ports, const std::vector<IpAddr>& ips, F fn) {
  for (const auto& m : ports) {
    IpAddr hostIp;
    bool anyHost = m.hostIp.empty() || m.hostIp == "0.0.0.0" || m.hostIp == "::";
    if (!anyHost) ParseIp(m.hostIp, &hostIp);
    for (const auto& ip : ips) {
      if (!anyHost && hostIp.family != ip.family) continue;
      const std::string map = std::string(anyHost ? "hp" : "hpa") + (ip.family == AF_INET ? "4" : "6");
      for (unsigned i = 0; i < m.range; i++) fn(map, anyHost ? nullptr : &hostIp, m, i, ip);
    }
  }
}

// The elements in nft syntax ("tcp . 8080 : 10.89.16.2 . 80"), keys only for a get.
std::vector<std::pair<std::string, std::string>> PortElements(const std::vector<PortMapping>& ports,
                                                              const std::vector<IpAddr>& ips, bool keysOnly) {
  std::vector<std::pair<std::string, std::string>> out;
  ForEachPortElement(
      ports, ips,
      [&](const std::string& map, const IpAddr* hostIp, const PortMapping& m, unsigned i, const IpAddr& ip) {
        std::string key =
            (hostIp ? FormatIp(*hostIp) + " . " : "") + m.protocol + " . " + std::to_string(m.hostPort + i);
        out.emplace_back(map,
                         keysOnly ? key : key + " : " + FormatIp(ip) + " . " + std::to_string(m.containerPort + i));
      });
  return out;
}

// The same elements in the kernel's layout, for SetElems.
std::vector<SetElem> PortSetElems(const std::vector<PortMapping>& ports, const std::vector<IpAddr>& ips) {
  auto put = [](std::vector<uint8_t>* v, const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    v->insert(v->end(), b, b + n);
    v->resize((v->size() + 3) & ~size_t(3), 0);  // each part fills whole 32-bit registers
  };
  std::vector<SetElem> out;
  ForEachPortElement(
      ports, ips,
      [&](const std::string& map, const IpAddr* hostIp, const PortMapping& m, unsigned i, const IpAddr& ip) {
        SetElem e{map, {}, {}};
        const uint8_t proto = m.protocol == "tcp" ? IPPROTO_TCP : m.protocol == "udp" ? IPPROTO_UDP : IPPROTO_SCTP;
        const uint16_t hostPort = htons(m.hostPort + i), containerPort = htons(m.containerPort + i);
        if (hostIp) put(&e.key, hostIp->b, hostIp->len());
        put(&e.key, &proto, 1);
        put(&e.key, &hostPort, 2);
        put(&e.data, ip.b, ip.len());
        put(&e.data, &containerPort, 2);
        out.push_back(std::move(e));
      });
  return out;
}

std::string ElementCommands(const char* verb, const std::vector<std::pair<std::string, std::string>>& elems) {
  std::string s;
  for (const char* map : {"hp4", "hp6", "hpa4", "hpa6"}) {
    std::string list;
    for (const auto& e : elems)
      if (e.first == map) list += (list.empty() ? "" : ", ") + e.second;
    if (!list.empty()) s += std::string(verb) + " element inet podnet " + map + " { " + list + " }\n";
  }
  return s;
}

// Deletes a sandbox's port elements; when some are already gone (a repeated
// Detach) deletes the rest one by one.
void DeleteElements(const std::vector<PortMapping>& ports, const std::vector<IpAddr>& ips) {
  const auto elems = PortSetElems(ports, ips);
  if (SetElems(false, elems) == 0) return;
  for (const auto& e : elems) SetElems(false, {e});
}

int DeleteLink(Netlink& nl, const std::string& name) {
  NlBatch b;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.Begin(RTM_DELLINK, 0, &ifi, sizeof ifi);
  b.PutStr(IFLA_IFNAME, name);
  return nl.Run(b, nullptr, {ENODEV});
}

void AddNeigh(NlBatch& b, int ifindex, const IpAddr& ip, const uint8_t mac[6]) {
  ndmsg nd{};
  nd.ndm_family = ip.family;
  nd.ndm_ifindex = ifindex;
  nd.ndm_state = NUD_PERMANENT;
  nd.ndm_type = RTN_UNICAST;
  b.Begin(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof nd);
  b.PutAddr(NDA_DST, ip);
  b.Put(NDA_LLADDR, mac, 6);
}

void AddRoute(NlBatch& b, int ifindex, const IpAddr& dst, int dstLen, const IpAddr* gw, const IpAddr* src) {
  rtmsg rt{};
  rt.rtm_family = dst.family;
  rt.rtm_dst_len = dstLen;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rt.rtm_type = RTN_UNICAST;
  // IPv4's gateway is not on any subnet of the interface: on-link by fiat.
  if (gw && gw->family == AF_INET) rt.rtm_flags = RTNH_F_ONLINK;
  b.Begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
  if (dstLen > 0) b.PutAddr(RTA_DST, dst);
  if (gw) b.PutAddr(RTA_GATEWAY, *gw);
  if (src) b.PutAddr(RTA_PREFSRC, *src);
  b.PutU32(RTA_OIF, ifindex);
}

int ValidatePorts(const std::vector<PortMapping>& ports, Error* err, const Net* net);

int ValidateRequest(const AttachRequest& r, Error* err) {
  if (!ValidName(r.network)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network name '" + r.network + "'");
  if (!ValidName(r.containerId))
    return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid container id '" + r.containerId + "'");
  if (!ValidIfname(r.ifname))
    return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid interface name '" + r.ifname + "'");
  if (r.netnsPath.empty()) return Fail(err, ErrorKind::kInvalid, -EINVAL, "no network namespace path");
  uint8_t mac[6];
  if (!r.mac.empty() && (!ParseMac(r.mac, mac) || (mac[0] & 1)))
    return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid MAC address '" + r.mac + "' (unicast aa:bb:cc:dd:ee:ff)");
  for (const auto& s : r.staticIps) {
    IpAddr ip;
    if (!ParseIp(s, &ip)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid IP address '" + s + "'");
  }
  return ValidatePorts(r.ports, err, nullptr);
}

// Port mappings, each well formed, no host port twice; `net`: each host IP has
// a subnet of its family there.
int ValidatePorts(const std::vector<PortMapping>& ports, Error* err, const Net* net) {
  std::set<std::string> seen;
  for (const auto& p : ports) {
    const std::string what =
        "port mapping " + p.protocol + " " + std::to_string(p.hostPort) + ":" + std::to_string(p.containerPort);
    if (p.protocol != "tcp" && p.protocol != "udp" && p.protocol != "sctp")
      return Fail(err, ErrorKind::kInvalid, -EINVAL, what + ": protocol must be tcp, udp or sctp");
    if (p.hostPort == 0 || p.containerPort == 0 || p.range == 0 || p.hostPort + p.range - 1 > 65535 ||
        p.containerPort + p.range - 1 > 65535)
      return Fail(err, ErrorKind::kInvalid, -EINVAL, what + ": ports must be within 1-65535");
    IpAddr h;
    if (!p.hostIp.empty() && !ParseIp(p.hostIp, &h))
      return Fail(err, ErrorKind::kInvalid, -EINVAL, what + ": invalid host IP '" + p.hostIp + "'");
    for (unsigned i = 0; i < p.range; i++)
      if (!seen.insert(p.protocol + "/" + p.hostIp + "/" + std::to_string(p.hostPort + i)).second)
        return Fail(err, ErrorKind::kInvalid, -EINVAL, what + ": host port given twice");
    bool has = net == nullptr || p.hostIp.empty();
    if (net)
      for (const auto& pr : net->prefixes) has = has || pr.base.family == h.family;
    if (!has)
      return Fail(err, ErrorKind::kInvalid, -EINVAL,
                  "host IP " + p.hostIp + " has no subnet of its family on network " + net->def.name);
  }
  return 0;
}

// Publishes `ports` to the sandbox addresses `ips`: "create" fails when a key
// exists, and the whole transaction with it, so a port held by another
// sandbox changes nothing.
int PublishPorts(const Config& cfg, const Net& net, const std::vector<PortMapping>& ports,
                 const std::vector<IpAddr>& ips, Error* err) {
  const auto elems = PortSetElems(ports, ips);
  if (elems.empty()) return 0;
  int rc = SetElems(true, elems);
  if (rc == -ENOENT) {  // the table went away under us: write it again
    if ((rc = EnsureOnce(cfg, net, true, err)) < 0) return rc;
    rc = SetElems(true, elems);
  }
  if (rc == -EEXIST) {
    std::string list;
    for (const auto& p : ports)
      list += (list.empty() ? "" : ", ") + p.protocol + " " + (p.hostIp.empty() ? "" : p.hostIp + ":") +
              std::to_string(p.hostPort) + (p.range > 1 ? "-" + std::to_string(p.hostPort + p.range - 1) : "");
    return Fail(err, ErrorKind::kPortInUse, -EADDRINUSE,
                "host port " + list + " is already published by another sandbox");
  }
  if (rc < 0)
    return Fail(err, ErrorKind::kNftables, rc, std::string("nftables refused the port elements: ") + strerror(-rc));
  return 0;
}

// 127.0.0.1:hostPort is DNATed to the sandbox: the kernel routes a loopback
// source out of the host end only with route_localnet (needed when an IPv4
// address has a port published on every or an IPv4 host address).
int AllowLocalnet(const std::string& hostIf, const std::vector<PortMapping>& ports, const std::vector<IpAddr>& ips,
                  Error* err) {
  bool v4ports = false;
  for (const auto& ip : ips) {
    if (ip.family != AF_INET) continue;
    for (const auto& pm : ports) {
      IpAddr h;
      v4ports = v4ports || pm.hostIp.empty() || (ParseIp(pm.hostIp, &h) && h.family == AF_INET);
    }
  }
  if (!v4ports) return 0;
  const std::string path = "/proc/sys/net/ipv4/conf/" + hostIf + "/route_localnet";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  int e = fd < 0 ? -errno : (write(fd, "1", 1) == 1 ? 0 : -errno);
  if (fd >= 0) close(fd);
  return e < 0 ? Fail(err, ErrorKind::kSystem, e, "cannot write " + path) : 0;
}

}  // namespace

std::string HostIfname(const std::string& network, const std::string& containerId, const std::string& ifname) {
  // FNV-1a, 64 bits; 13 hex digits fit IFNAMSIZ after the "pn" prefix.
  uint64_t h = 1469598103934665603ull;
  for (const std::string* s : {&network, &containerId, &ifname}) {
    for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
  }
  char buf[16];
  snprintf(buf, sizeof buf, "pn%013llx", static_cast<unsigned long long>(h & 0xfffffffffffffull));
  return buf;
}

int Attach(const Config& cfg, const AttachRequest& req, Attachment* out, Error* err) {
  int rc = ValidateRequest(req, err);
  if (rc < 0) return rc;
  Net net;
  if ((rc = LoadNet(cfg, req.network, &net, err)) < 0) return rc;
  std::vector<IpAddr> statics;
  for (const auto& s : req.staticIps) {
    IpAddr ip;
    ParseIp(s, &ip);
    statics.push_back(ip);
  }
  if ((rc = ValidatePorts(req.ports, err, &net)) < 0) return rc;
  const std::string recordPath = RecordPath(cfg, req.network, req.containerId, req.ifname);
  if (access(recordPath.c_str(), F_OK) == 0)
    return Fail(err, ErrorKind::kAlreadyAttached, -EEXIST,
                "container " + req.containerId + " (" + req.ifname + ") is already attached to " + req.network);
  struct stat st;
  Fd nsfd(OpenNetnsFd(req.netnsPath.c_str(), &st));
  if (!nsfd) {
    int e = nsfd.get();
    return Fail(err, e == -kNotNetns ? ErrorKind::kInvalid : ErrorKind::kSystem, e == -kNotNetns ? -EINVAL : e,
                req.netnsPath + " is not a network namespace");
  }
  if ((rc = EnsureOnce(cfg, net, false, err)) < 0) return rc;

  const std::string owner = OwnerText(req.containerId, req.ifname);
  std::vector<IpAddr> ips;
  if ((rc = Allocate(cfg, net, statics, owner, &ips, err)) < 0) return rc;

  // From here on, a failure undoes what was done, in reverse.
  bool elementsAdded = false, linkAdded = false;
  const std::string hostIf = HostIfname(req.network, req.containerId, req.ifname);
  Netlink host(-1);
  auto undo = [&](int code) {
    if (linkAdded && host.ok()) DeleteLink(host, hostIf);
    if (elementsAdded) DeleteElements(req.ports, ips);
    for (const auto& ip : ips) Release(cfg, req.network, ip, owner);
    return code;
  };

  if ((rc = PublishPorts(cfg, net, req.ports, ips, err)) < 0) return undo(rc);
  elementsAdded = true;

  uint8_t mac[6], hostMac[6];
  ParseMac(kHostMac, hostMac);
  if (!req.mac.empty()) {
    ParseMac(req.mac, mac);
  } else {
    if (getrandom(mac, 6, 0) != 6) return undo(Fail(err, ErrorKind::kSystem, -errno, "getrandom"));
    mac[0] = (mac[0] & 0xfe) | 0x02;  // unicast, locally administered
  }

  if ((rc = Netlink::Open(&host)) < 0) return undo(Fail(err, ErrorKind::kSystem, rc, "netlink socket"));
  int nsSock = SocketInNetns(nsfd.get(), AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (nsSock < 0) return undo(Fail(err, ErrorKind::kSystem, nsSock, "netlink socket in " + req.netnsPath));
  Netlink ns(nsSock);

  // The veth pair, both ends up, the peer created straight in the namespace.
  {
    NlBatch b;
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_flags = IFF_UP;
    ifi.ifi_change = IFF_UP;
    b.Begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    b.PutStr(IFLA_IFNAME, hostIf);
    b.Put(IFLA_ADDRESS, hostMac, 6);
    if (net.def.mtu) b.PutU32(IFLA_MTU, net.def.mtu);
    size_t li = b.NestBegin(IFLA_LINKINFO);
    b.PutStr(IFLA_INFO_KIND, "veth");
    size_t data = b.NestBegin(IFLA_INFO_DATA);
    size_t peer = b.NestBegin(VETH_INFO_PEER);
    // The peer cannot come up before the pair is linked (veth_open: ENOTCONN):
    // it is set up with its addresses below.
    ifinfomsg peerIfi{};
    peerIfi.ifi_family = AF_UNSPEC;
    b.PutRaw(&peerIfi, sizeof peerIfi);
    b.PutStr(IFLA_IFNAME, req.ifname);
    b.Put(IFLA_ADDRESS, mac, 6);
    if (net.def.mtu) b.PutU32(IFLA_MTU, net.def.mtu);
    b.PutU32(IFLA_NET_NS_FD, nsfd.get());
    b.NestEnd(peer);
    b.NestEnd(data);
    b.NestEnd(li);
    rc = host.Run(b);
    if (rc == -EEXIST && host.IfIndex(hostIf) >= 0) {
      // No record exists (checked above), so a link of this name is left from
      // an earlier attachment whose namespace the kernel is still cleaning up
      // (Detach with keepLink): it is ours, remove it and try again.
      DeleteLink(host, hostIf);
      rc = host.Run(b);
    }
    if (rc == -EEXIST)
      return undo(Fail(err, ErrorKind::kAlreadyAttached, rc,
                       "interface " + hostIf + " or " + req.ifname + " in " + req.netnsPath + " already exists"));
    if (rc < 0) return undo(Fail(err, ErrorKind::kSystem, rc, "cannot create veth pair " + hostIf + "/" + req.ifname));
    linkAdded = true;
  }
  int peerIndex = ns.IfIndex(req.ifname);
  int hostIndex = host.IfIndex(hostIf);
  if (peerIndex < 0) return undo(Fail(err, ErrorKind::kSystem, peerIndex, "no " + req.ifname + " in " + req.netnsPath));
  if (hostIndex < 0) return undo(Fail(err, ErrorKind::kSystem, hostIndex, "no " + hostIf));

  Attachment a;
  a.network = req.network;
  a.containerId = req.containerId;
  a.ifname = req.ifname;
  a.hostIfname = hostIf;
  a.mac = FormatMac(mac);
  a.hostMac = kHostMac;
  a.mtu = net.def.mtu ? net.def.mtu : 1500;
  a.ports = req.ports;

  // Inside: addresses (no prefix route, no duplicate address detection), the
  // gateway as a permanent neighbour, routes through it.
  NlBatch in;
  NlBatch out2;
  {
    ifinfomsg up{};
    up.ifi_family = AF_UNSPEC;
    up.ifi_index = peerIndex;
    up.ifi_flags = IFF_UP;
    up.ifi_change = IFF_UP;
    in.Begin(RTM_NEWLINK, 0, &up, sizeof up);
  }
  for (const auto& ip : ips) {
    const Prefix* p = nullptr;
    IpAddr gw;
    for (size_t i = 0; i < net.prefixes.size(); i++)
      if (Contains(net.prefixes[i], ip)) p = &net.prefixes[i], gw = net.gateways[i];
    IpAddr nextHop = gw;
    if (ip.family == AF_INET6) ParseIp(kGateway6, &nextHop);
    ifaddrmsg ifa{};
    ifa.ifa_family = ip.family;
    ifa.ifa_prefixlen = p->bits;
    ifa.ifa_index = peerIndex;
    in.Begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
    in.PutAddr(IFA_LOCAL, ip);
    in.PutAddr(IFA_ADDRESS, ip);
    in.PutU32(IFA_FLAGS, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
    AddNeigh(in, peerIndex, nextHop, hostMac);
    if (net.def.internal) {
      AddRoute(in, peerIndex, p->base, p->bits, &nextHop, nullptr);
      a.routes.push_back({FormatPrefix(*p), FormatIp(nextHop)});
    } else {
      IpAddr any;
      any.family = ip.family;
      AddRoute(in, peerIndex, any, 0, &nextHop, nullptr);
      a.routes.push_back({ip.family == AF_INET ? "0.0.0.0/0" : "::/0", FormatIp(nextHop)});
    }
    a.ips.push_back({FormatIp(ip) + "/" + std::to_string(p->bits), FormatIp(nextHop)});
    // Outside: the sandbox address routed to the host end, its MAC known.
    AddRoute(out2, hostIndex, ip, ip.len() * 8, nullptr, &gw);
    AddNeigh(out2, hostIndex, ip, mac);
  }
  size_t failed = 0;
  if ((rc = ns.Run(in, &failed)) < 0)
    return undo(Fail(err, ErrorKind::kSystem, rc, "cannot configure " + req.ifname + " in " + req.netnsPath));
  if ((rc = host.Run(out2, &failed)) < 0) return undo(Fail(err, ErrorKind::kSystem, rc, "cannot route to " + hostIf));
  if ((rc = AllowLocalnet(hostIf, req.ports, ips, err)) < 0) return undo(rc);

  // The record lets Detach and Check work from another process.
  if ((rc = MkdirP(RecordDir(cfg, req.network), 0700)) < 0 || (rc = WriteFileAtomic(recordPath, ToJson(a).dump())) < 0)
    return undo(Fail(err, ErrorKind::kSystem, rc, "cannot write " + recordPath));
  *out = std::move(a);
  return 0;
}

int GetAttachment(const Config& cfg, const std::string& network, const std::string& containerId,
                  const std::string& ifname, Attachment* out, Error* err) {
  if (!ValidName(network) || !ValidName(containerId) || !ValidIfname(ifname))
    return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network, container id or interface name");
  const std::string path = RecordPath(cfg, network, containerId, ifname);
  std::string text;
  int rc = ReadFile(path, &text);
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "no attachment record " + path);
  Attachment a;
  if (!FromJson(text, &a)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "corrupt attachment record " + path);
  *out = std::move(a);
  return 0;
}

int ListAttachments(const Config& cfg, const std::string& network, std::vector<Attachment>* out, Error* err) {
  if (!ValidName(network)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network name '" + network + "'");
  const std::string dir = RecordDir(cfg, network);
  DIR* d = opendir(dir.c_str());
  if (!d) return errno == ENOENT ? 0 : Fail(err, ErrorKind::kSystem, -errno, "cannot list " + dir);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0 || name[0] == '.') continue;
    std::string text;
    Attachment a;
    if (ReadFile(dir + "/" + name, &text) == 0 && FromJson(text, &a)) out->push_back(std::move(a));
  }
  closedir(d);
  return 0;
}

namespace {

std::vector<IpAddr> RecordIps(const Attachment& a) {
  std::vector<IpAddr> ips;
  for (const auto& ip : a.ips) {
    IpAddr x;
    if (ParseIp(ip.address.substr(0, ip.address.find('/')), &x)) ips.push_back(x);
  }
  return ips;
}

}  // namespace

int Detach(const Config& cfg, const std::string& network, const std::string& containerId, const std::string& ifname,
           const std::string& netnsPath, Error* err, bool keepLink) {
  if (!ValidName(network) || !ValidName(containerId) || !ValidIfname(ifname))
    return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network, container id or interface name");
  const std::string owner = OwnerText(containerId, ifname);
  const std::string path = RecordPath(cfg, network, containerId, ifname);
  std::string text;
  Attachment a;
  std::vector<IpAddr> ips;
  if (ReadFile(path, &text) == 0 && FromJson(text, &a)) {
    ips = RecordIps(a);
    DeleteElements(a.ports, ips);
  } else {
    // Killed before the record was written: find the leases by owner
    // (elements it may have created are gc's, which checks their addresses).
    std::vector<std::pair<IpAddr, std::string>> leases;
    ListLeases(cfg, network, &leases);
    for (const auto& l : leases)
      if (l.second == owner) ips.push_back(l.first);
  }
  // Removing the host end removes the pair, with its addresses, routes and
  // neighbours on both sides.
  if (!keepLink) {
    Netlink host(-1);
    int rc = Netlink::Open(&host);
    if (rc == 0) rc = DeleteLink(host, HostIfname(network, containerId, ifname));
    if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "cannot delete " + HostIfname(network, containerId, ifname));
  }
  unlink(path.c_str());
  for (const auto& ip : ips) Release(cfg, network, ip, owner);
  return 0;
}

int AddPorts(const Config& cfg, const std::string& network, const std::string& containerId, const std::string& ifname,
             const std::vector<PortMapping>& ports, Attachment* out, Error* err) {
  Attachment a;
  int rc = GetAttachment(cfg, network, containerId, ifname, &a, err);
  if (rc < 0) return rc;
  Net net;
  if ((rc = LoadNet(cfg, network, &net, err)) < 0) return rc;
  // Checked together with what is published already: a host port given twice is refused before anything changes.
  std::vector<PortMapping> all = a.ports;
  all.insert(all.end(), ports.begin(), ports.end());
  if ((rc = ValidatePorts(all, err, &net)) < 0) return rc;
  const std::vector<IpAddr> ips = RecordIps(a);
  if ((rc = EnsureOnce(cfg, net, false, err)) < 0) return rc;
  if ((rc = PublishPorts(cfg, net, ports, ips, err)) < 0) return rc;
  // The record is written after the elements: should this process die in
  // between, Detach misses them, but they point at an address whose lease
  // Detach releases, and GC removes such elements.
  a.ports = std::move(all);
  const std::string path = RecordPath(cfg, network, containerId, ifname);
  rc = AllowLocalnet(a.hostIfname, a.ports, ips, err);
  if (rc == 0 && (rc = WriteFileAtomic(path, ToJson(a).dump())) < 0)
    Fail(err, ErrorKind::kSystem, rc, "cannot write " + path);
  if (rc < 0) {
    DeleteElements(ports, ips);
    return rc;
  }
  *out = std::move(a);
  return 0;
}

int Check(const Config& cfg, const std::string& network, const std::string& containerId, const std::string& ifname,
          const std::string& netnsPath, Error* err) {
  Attachment a;
  int rc = GetAttachment(cfg, network, containerId, ifname, &a, err);
  if (rc < 0) return rc;
  const std::string owner = OwnerText(containerId, ifname);
  const std::vector<IpAddr> ips = RecordIps(a);
  for (const auto& ip : ips) {
    std::string held;
    if (ReadFile(NetStateDir(cfg, network) + "/" + FormatIp(ip), &held) < 0 || held != owner)
      return Fail(err, ErrorKind::kInvalid, -ENOENT, "address " + FormatIp(ip) + " is not leased to " + containerId);
  }
  Netlink host(-1);
  if ((rc = Netlink::Open(&host)) < 0) return Fail(err, ErrorKind::kSystem, rc, "netlink socket");
  if ((rc = host.IfIndex(a.hostIfname)) < 0)
    return Fail(err, ErrorKind::kInvalid, rc, "host interface " + a.hostIfname + " is missing");
  if (!netnsPath.empty()) {
    struct stat st;
    Fd nsfd(OpenNetnsFd(netnsPath.c_str(), &st));
    if (!nsfd) return Fail(err, ErrorKind::kInvalid, nsfd.get(), netnsPath + " is not a network namespace");
    int s = SocketInNetns(nsfd.get(), AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (s < 0) return Fail(err, ErrorKind::kSystem, s, "netlink socket in " + netnsPath);
    Netlink ns(s);
    int index = ns.IfIndex(ifname);
    if (index < 0) return Fail(err, ErrorKind::kInvalid, index, ifname + " is missing in " + netnsPath);
    std::vector<IpAddr> have;
    if ((rc = ns.Addresses(index, &have)) < 0)
      return Fail(err, ErrorKind::kSystem, rc, "cannot list addresses of " + ifname);
    for (const auto& ip : ips) {
      bool found = false;
      for (const auto& h : have) found = found || (h.family == ip.family && ToU128(h) == ToU128(ip));
      if (!found)
        return Fail(err, ErrorKind::kInvalid, -ENOENT, FormatIp(ip) + " is missing on " + ifname + " in " + netnsPath);
    }
  }
  auto keys = PortElements(a.ports, ips, true);
  if (!keys.empty()) {
    std::string errText;
    rc = NftRun(ElementCommands("get", keys), &errText);
    if (rc < 0)
      return Fail(err, ErrorKind::kInvalid, rc, "published ports of " + containerId + " are missing: " + errText);
  }
  return 0;
}

int ListOwners(const Config& cfg, const std::string& network, std::vector<Owner>* out, Error* err) {
  if (!ValidName(network)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network name '" + network + "'");
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<std::pair<IpAddr, std::string>> leases;
  int rc = ListLeases(cfg, network, &leases);
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "cannot list the leases of " + network);
  for (const auto& l : leases) {
    // "containerId\nifname\n" (OwnerText)
    auto nl = l.second.find('\n');
    if (nl == std::string::npos || l.second.size() < nl + 2) continue;
    seen.insert({l.second.substr(0, nl), l.second.substr(nl + 1, l.second.size() - nl - 2)});
  }
  std::vector<Attachment> records;
  if ((rc = ListAttachments(cfg, network, &records, err)) < 0) return rc;
  for (const auto& a : records) seen.insert({a.containerId, a.ifname});
  for (const auto& o : seen) out->push_back({o.first, o.second});
  return 0;
}

int GC(const Config& cfg, const std::string& network, const std::vector<Owner>& live, GcStats* stats, Error* err,
       const std::string& onlyPrefix) {
  if (!ValidName(network)) return Fail(err, ErrorKind::kInvalid, -EINVAL, "invalid network name '" + network + "'");
  GcStats st;
  std::set<std::string> liveOwners;
  for (const auto& o : live) liveOwners.insert(OwnerText(o.containerId, o.ifname));
  Netlink host(-1);
  int rc = Netlink::Open(&host);
  if (rc < 0) return Fail(err, ErrorKind::kSystem, rc, "netlink socket");
  auto dropLink = [&](const std::string& owner) {
    auto nl = owner.find('\n');
    if (nl == std::string::npos) return;
    const std::string cid = owner.substr(0, nl);
    const std::string ifn = owner.substr(nl + 1, owner.size() - nl - 2);
    const std::string name = HostIfname(network, cid, ifn);
    if (host.IfIndex(name) >= 0 && DeleteLink(host, name) == 0) st.links++;
  };
  // Leases of dead owners, their links and records.
  std::vector<std::pair<IpAddr, std::string>> leases;
  ListLeases(cfg, network, &leases);
  std::set<std::string> liveIps;
  std::set<std::string> dead;
  auto candidate = [&](const std::string& owner) { return owner.compare(0, onlyPrefix.size(), onlyPrefix) == 0; };
  for (const auto& l : leases) {
    if (liveOwners.count(l.second) || !candidate(l.second)) {
      liveIps.insert(FormatIp(l.first));
      continue;
    }
    dead.insert(l.second);
    if (Release(cfg, network, l.first, l.second) == 0) st.leases++;
  }
  // Temporary files of writers killed between create and rename (leases, hints, records).
  SweepDeadTemps(NetStateDir(cfg, network));
  SweepDeadTemps(RecordDir(cfg, network));
  // Records of dead owners (a record without a lease, too).
  std::vector<Attachment> records;
  ListAttachments(cfg, network, &records, nullptr);
  for (const auto& a : records) {
    const std::string owner = OwnerText(a.containerId, a.ifname);
    if (liveOwners.count(owner) || !candidate(owner)) continue;
    dead.insert(owner);
    unlink(RecordPath(cfg, network, a.containerId, a.ifname).c_str());
  }
  for (const auto& owner : dead) dropLink(owner);
  // Published ports pointing into this network at an address no live owner holds.
  Net net;
  if (LoadNet(cfg, network, &net, nullptr) == 0) {
    std::string errText;
    std::vector<std::pair<std::string, std::string>> stale;
    // One list per call: libnftables prints one JSON document per command.
    for (const char* map : {"hp4", "hp6", "hpa4", "hpa6"}) {
      std::string out;
      rc = NftRun(std::string("list map inet podnet ") + map, &errText, &out, true);
      if (rc == -ENOPKG) return Fail(err, ErrorKind::kNoLibrary, rc, errText);
      if (rc < 0) continue;  // no table: no element
      try {
        const json doc = json::parse(out);  // must outlive the loop over its members
        for (const auto& obj : doc.at("nftables")) {
          if (!obj.contains("map") || !obj["map"].contains("elem")) continue;
          for (const auto& e : obj["map"]["elem"]) {
            const auto& key = e.at(0).at("concat");
            const auto& val = e.at(1).at("concat");
            IpAddr target;
            if (!ParseIp(val.at(0).get<std::string>(), &target)) continue;
            bool mine = false;
            for (const auto& p : net.prefixes) mine = mine || Contains(p, target);
            if (!mine || liveIps.count(FormatIp(target))) continue;
            std::string k;
            for (const auto& part : key) {
              if (!k.empty()) k += " . ";
              k += part.is_string() ? part.get<std::string>() : std::to_string(part.get<long>());
            }
            stale.emplace_back(map, k);
          }
        }
      } catch (const std::exception& e) {
        return Fail(err, ErrorKind::kNftables, -EINVAL,
                    std::string("cannot read podnet's port map ") + map + ": " + e.what());
      }
    }
    for (const auto& k : stale)
      if (NftRun(ElementCommands("delete", {k}), &errText) == 0) st.elements++;
  }
  if (stats) *stats = st;
  return 0;
}

}  // namespace native
}  // namespace podnet
