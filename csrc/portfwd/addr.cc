#include "addr.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <string.h>

namespace pfwd {

bool ParseAddr(const std::string& ip, int port, sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
  } else {
    return false;
  }
  SetPort(ss, port);
  return true;
}

socklen_t SockLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

int Port(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

void SetPort(sockaddr_storage* ss, int port) {
  if (ss->ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(ss)->sin6_port = htons(port);
  else
    reinterpret_cast<sockaddr_in*>(ss)->sin_port = htons(port);
}

bool IsLoopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return (ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr) >> 24) == 127;
  return ss.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
}

std::string Describe(const std::string& proto, const std::string& ip, int port) {
  return proto + " " + (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

// Congestion control for a leg that stays inside this host: the container end
// when the target is the namespace's own address, the client end when the
// listener is on a loopback address (accepted sockets inherit the listener's).
// Pacing is for a network bottleneck: on a host whose default is bbr every
// segment is paced by an hrtimer, which on a loopback or veth leg only costs
// CPU (measured here at a fixed 4 Gbit/s: 30-45% of the forwarder's CPU per
// byte, and the receiving end wakes more often). reno is built in, allowed to
// every user and does not pace; on a lossless local leg it moves bytes as fast
// as any other. It must be chosen before the handshake: a connection that
// switches away from bbr later keeps being paced. Best effort: the default
// stays on failure.
void LocalCongestionControl(int fd) {
  static const char kReno[] = "reno";
  setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, kReno, sizeof kReno - 1);
}

}  // namespace pfwd
