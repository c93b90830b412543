// Pieces shared by the engine's files (not part of its public API).
#pragma once

#include <string>
#include <vector>

#include "engine.h"
#include "netlink.h"

namespace podnet {
namespace native {

// A subnet as an address plus prefix length, with 128-bit offset arithmetic
// (IPv4 addresses sit in the low 32 bits).
struct Prefix {
  IpAddr base;
  int bits = 0;
};

bool ParsePrefix(const std::string& s, Prefix* out);  // base must be the network address
std::string FormatPrefix(const Prefix& p);
bool Contains(const Prefix& p, const IpAddr& a);
bool Overlaps(const Prefix& a, const Prefix& b);
unsigned __int128 ToU128(const IpAddr& a);
IpAddr FromU128(int family, unsigned __int128 v);

// The network with its subnets parsed.
struct Net {
  Network def;
  std::vector<Prefix> prefixes;  // same order as def.subnets
  std::vector<IpAddr> gateways;
};

int LoadNet(const Config& cfg, const std::string& name, Net* out, Error* err);

bool ValidName(const std::string& s);  // network name / container id
bool ValidIfname(const std::string& s);

int Fail(Error* err, ErrorKind kind, int code, const std::string& message);

// nftables helpers shared by attach/detach and the network's base rules.
constexpr const char* kTable = "inet podnet";
std::string NetChain(const std::string& network);
// Ensures base rules once per process and network (after a table loss too).
int EnsureOnce(const Config& cfg, const Net& net, bool force, Error* err);
// Across processes (ensured.cc): whether a process already wrote this
// network's base rules in this boot and they are still there; and the mark.
bool EnsureMarked(const Config& cfg, const Net& net);
void MarkEnsured(const Config& cfg, const Net& net);

// IPAM (ipam.cc). The network's state directory.
std::string NetStateDir(const Config& cfg, const std::string& network);
// Leases one address per subnet (the static ones asked for, else the next free).
// `owner` is the lease file's content. On failure leases nothing.
int Allocate(const Config& cfg, const Net& net, const std::vector<IpAddr>& statics, const std::string& owner,
             std::vector<IpAddr>* out, Error* err);
// Removes the lease of `ip` if `owner` holds it (or always when owner is empty).
int Release(const Config& cfg, const std::string& network, const IpAddr& ip, const std::string& owner);
// Every lease: address -> owner text.
int ListLeases(const Config& cfg, const std::string& network, std::vector<std::pair<IpAddr, std::string>>* out);
std::string OwnerText(const std::string& containerId, const std::string& ifname);

// Writes `data` to `path` atomically (temporary file + rename).
// A unique temporary file name in `dir`.
std::string TempName(const std::string& dir);
int WriteFileAtomic(const std::string& path, const std::string& data);
// Removes the temporary files in `dir` whose writer (the pid in their name) is
// gone: a writer killed between create and rename leaves one. Returns how many.
int SweepDeadTemps(const std::string& dir);
int ReadFile(const std::string& path, std::string* out);
int MkdirP(const std::string& path, mode_t mode);

}  // namespace native
}  // namespace podnet
