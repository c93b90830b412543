// Socket address functions shared by the forwarder's parts.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace pfwd {

// Parses an IPv4 or IPv6 literal with `port`; false if it is neither.
bool ParseAddr(const std::string& ip, int port, sockaddr_storage* ss);
socklen_t SockLen(const sockaddr_storage& ss);
int Port(const sockaddr_storage& ss);
void SetPort(sockaddr_storage* ss, int port);
bool IsLoopback(const sockaddr_storage& ss);
// "tcp 1.2.3.4:80", "udp [::1]:53".
std::string Describe(const std::string& proto, const std::string& ip, int port);

// Congestion control for a leg that stays inside this host (see addr.cc).
void LocalCongestionControl(int fd);

}  // namespace pfwd
