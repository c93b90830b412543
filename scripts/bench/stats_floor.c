// The floor for reading link statistics in many namespaces, in raw C (no libnl):
//   fresh: per namespace setns + socket + RTM_GETLINK (by name) + close
//   kept:  one NETLINK_ROUTE socket per namespace made once (setns only to create it),
//          then RTM_GETLINK on each kept socket.
// Usage: stats_floor ROUNDS IFNAME NSPATH...   Prints "fresh <us/ns>" and "kept <us/ns>".
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static char buf[65536];
static unsigned long long sink;

// One RTM_GETLINK by name; returns rx_bytes (so the work is not optimized away), or -1.
static long long getlink(int s, const char *ifname, unsigned seq) {
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    char attrs[64];
  } req;
  memset(&req, 0, sizeof(req));
  size_t namelen = strlen(ifname) + 1;
  struct rtattr *rta = (struct rtattr *)req.attrs;
  rta->rta_type = IFLA_IFNAME;
  rta->rta_len = RTA_LENGTH(namelen);
  memcpy(RTA_DATA(rta), ifname, namelen);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi)) + RTA_ALIGN(rta->rta_len);
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = seq;
  req.ifi.ifi_family = AF_UNSPEC;
  if (send(s, &req, req.nh.nlmsg_len, 0) < 0) return -1;
  ssize_t n = recv(s, buf, sizeof(buf), 0);
  if (n < 0) return -1;
  struct nlmsghdr *nh = (struct nlmsghdr *)buf;
  if (!NLMSG_OK(nh, (size_t)n) || nh->nlmsg_type != RTM_NEWLINK) return -1;
  struct ifinfomsg *ifi = NLMSG_DATA(nh);
  int len = IFLA_PAYLOAD(nh);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_STATS64) {
      struct rtnl_link_stats64 st;
      memcpy(&st, RTA_DATA(a), sizeof(st));
      return (long long)st.rx_bytes;
    }
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int rounds = atoi(argv[1]);
  const char *ifname = argv[2];
  int n = argc - 3;
  int *nsfd = calloc(n, sizeof(int)), *sock = calloc(n, sizeof(int));
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < n; i++) {
    nsfd[i] = open(argv[3 + i], O_RDONLY | O_CLOEXEC);
    if (nsfd[i] < 0) {
      perror(argv[3 + i]);
      return 1;
    }
  }
  // fresh socket per namespace per read
  double t = now_us();
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < n; i++) {
      if (setns(nsfd[i], CLONE_NEWNET)) {
        perror("setns");
        return 1;
      }
      int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
      long long v = getlink(s, ifname, 1);
      if (v < 0) {
        fprintf(stderr, "getlink failed in %s\n", argv[3 + i]);
        return 1;
      }
      sink += v;
      close(s);
    }
  double fresh = (now_us() - t) / ((double)rounds * n);
  setns(self, CLONE_NEWNET);
  // kept sockets
  for (int i = 0; i < n; i++) {
    setns(nsfd[i], CLONE_NEWNET);
    sock[i] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  }
  setns(self, CLONE_NEWNET);
  t = now_us();
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < n; i++) {
      long long v = getlink(sock[i], ifname, r + 2);
      if (v < 0) return 1;
      sink += v;
    }
  double kept = (now_us() - t) / ((double)rounds * n);
  printf("fresh %.2f\nkept %.2f\n", fresh, kept);
  return sink == 0xdeadbeef;
}
