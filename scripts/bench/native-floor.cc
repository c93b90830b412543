// The kernel floor of one native attachment, for scripts/bench/native: the
// same kernel work as the engine's Attach + Detach (veth with its peer made
// inside the namespace, address, neighbour and route inside, /32 route and
// neighbour outside, route_localnet, one nftables map element in one
// nf_tables transaction; then element delete and link delete) with none of its
// bookkeeping (no definition file, IPAM lease, record or validation). It
// reuses the engine's netlink batch builder, element writer and libnftables
// loader (for its table) so the difference measured is the bookkeeping alone.
// Each cycle also makes and removes the namespace (unshare + bind mount,
// umount + unlink), as the runtime's sandbox does.
// Usage: native-floor keep|del <netns path> <cycles>   prints "cycle_us <n>" per
// cycle; keep: the veth goes with the namespace, del: the link is deleted first.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../../csrc/core/native/netlink.h"
#include "../../csrc/core/native/nft.h"
#include "../../csrc/core/native/nft_elements.h"
#include "../../csrc/core/netns.h"
#include "../../csrc/core/nsocket.h"

using namespace podnet;
using namespace podnet::native;

static double NowUs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void Die(const char* what, int rc) {
  fprintf(stderr, "native-floor: %s: %d\n", what, rc);
  exit(1);
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const bool delLink = std::string(argv[1]) == "del";
  const char* nsPath = argv[2];
  int cycles = atoi(argv[3]);
  struct stat st;
  int hostNs = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  umount2(nsPath, MNT_DETACH);  // left by a run that was killed
  unlink(nsPath);
  std::string err;
  if (NftRun("add table inet natfloor\nadd map inet natfloor hp4 { type inet_proto . inet_service : ipv4_addr . "
             "inet_service; }",
             &err) < 0)
    Die(err.c_str(), -1);
  const uint8_t hostMac[6] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee}, mac[6] = {0x02, 1, 2, 3, 4, 5};
  IpAddr ip, gw, any;
  ParseIp("10.89.157.2", &ip);
  ParseIp("10.89.157.1", &gw);
  any.family = AF_INET;
  // tcp . 44900 : 10.89.157.2 . 80, each part in whole 32-bit registers (nft_elements.h)
  const SetElem elem{"hp4", {IPPROTO_TCP, 0, 0, 0, 44900 >> 8, 44900 & 0xff, 0, 0}, {10, 89, 157, 2, 0, 80, 0, 0}};
  for (int c = 0; c < cycles; c++) {
    double t0 = NowUs();
    int f = open(nsPath, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (f < 0) Die("create netns file", -errno);
    close(f);
    if (unshare(CLONE_NEWNET) || mount("/proc/thread-self/ns/net", nsPath, "none", MS_BIND, nullptr) ||
        setns(hostNs, CLONE_NEWNET))
      Die("netns", -errno);
    int nsfd = OpenNetnsFd(nsPath, &st);
    if (nsfd < 0) Die("open netns", nsfd);
    Netlink host(-1);
    if (Netlink::Open(&host) < 0) Die("netlink", -1);
    Netlink ns(SocketInNetns(nsfd, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
    if (!ns.ok()) Die("netlink in netns", -1);
    NlBatch b;
    ifinfomsg ifi{};
    ifi.ifi_flags = ifi.ifi_change = IFF_UP;
    b.Begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    const std::string hostIf = "nf" + std::to_string(getpid() % 100000) + "x" + std::to_string(c % 10000);
    b.PutStr(IFLA_IFNAME, hostIf);
    b.Put(IFLA_ADDRESS, hostMac, 6);
    size_t li = b.NestBegin(IFLA_LINKINFO);
    b.PutStr(IFLA_INFO_KIND, "veth");
    size_t data = b.NestBegin(IFLA_INFO_DATA);
    size_t peer = b.NestBegin(VETH_INFO_PEER);
    ifinfomsg pifi{};
    b.PutRaw(&pifi, sizeof pifi);
    b.PutStr(IFLA_IFNAME, "eth0");
    b.Put(IFLA_ADDRESS, mac, 6);
    b.PutU32(IFLA_NET_NS_FD, nsfd);
    b.NestEnd(peer);
    b.NestEnd(data);
    b.NestEnd(li);
    int rc = host.Run(b);
    if (rc < 0) Die("veth", rc);
    int pidx = ns.IfIndex("eth0"), hidx = host.IfIndex(hostIf);
    NlBatch in;
    ifinfomsg up{};
    up.ifi_index = pidx;
    up.ifi_flags = up.ifi_change = IFF_UP;
    in.Begin(RTM_NEWLINK, 0, &up, sizeof up);
    ifaddrmsg ifa{};
    ifa.ifa_family = AF_INET;
    ifa.ifa_prefixlen = 24;
    ifa.ifa_index = pidx;
    in.Begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
    in.PutAddr(IFA_LOCAL, ip);
    in.PutAddr(IFA_ADDRESS, ip);
    in.PutU32(IFA_FLAGS, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
    ndmsg nd{};
    nd.ndm_family = AF_INET;
    nd.ndm_ifindex = pidx;
    nd.ndm_state = NUD_PERMANENT;
    in.Begin(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof nd);
    in.PutAddr(NDA_DST, gw);
    in.Put(NDA_LLADDR, hostMac, 6);
    rtmsg rt{};
    rt.rtm_family = AF_INET;
    rt.rtm_table = RT_TABLE_MAIN;
    rt.rtm_protocol = RTPROT_BOOT;
    rt.rtm_type = RTN_UNICAST;
    rt.rtm_flags = RTNH_F_ONLINK;
    in.Begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
    in.PutAddr(RTA_GATEWAY, gw);
    in.PutU32(RTA_OIF, pidx);
    if ((rc = ns.Run(in)) < 0) Die("inside", rc);
    NlBatch out;
    rtmsg hr{};
    hr.rtm_family = AF_INET;
    hr.rtm_dst_len = 32;
    hr.rtm_table = RT_TABLE_MAIN;
    hr.rtm_protocol = RTPROT_BOOT;
    hr.rtm_scope = RT_SCOPE_LINK;
    hr.rtm_type = RTN_UNICAST;
    out.Begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &hr, sizeof hr);
    out.PutAddr(RTA_DST, ip);
    out.PutU32(RTA_OIF, hidx);
    ndmsg hn{};
    hn.ndm_family = AF_INET;
    hn.ndm_ifindex = hidx;
    hn.ndm_state = NUD_PERMANENT;
    out.Begin(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &hn, sizeof hn);
    out.PutAddr(NDA_DST, ip);
    out.Put(NDA_LLADDR, mac, 6);
    if ((rc = host.Run(out)) < 0) Die("outside", rc);
    int fd = open(("/proc/sys/net/ipv4/conf/" + hostIf + "/route_localnet").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "1", 1) != 1) Die("route_localnet", -1);
    close(fd);
    if ((rc = SetElems(true, {elem}, "natfloor")) < 0) Die("create element", rc);
    // teardown
    if ((rc = SetElems(false, {elem}, "natfloor")) < 0) Die("delete element", rc);
    if (delLink) {
      NlBatch del;
      ifinfomsg d{};
      del.Begin(RTM_DELLINK, 0, &d, sizeof d);
      del.PutStr(IFLA_IFNAME, hostIf);
      if ((rc = host.Run(del)) < 0) Die("dellink", rc);
    }
    close(nsfd);
    if (umount2(nsPath, MNT_DETACH) || unlink(nsPath)) Die("remove netns", -errno);
    printf("cycle_us %.0f\n", NowUs() - t0);
  }
  NftRun("delete table inet natfloor", &err);
  return 0;
}
