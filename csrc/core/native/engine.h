// podnet's native network engine: everything a sandbox's network attachment
// needs, done in-process without N-API (shared by the addon and the CNI plugin
// executable). Functions return 0 or -errno and fill an Error.
//
// Topology: routed, no bridge (as Calico-style routed CNI designs do). The host
// end of a veth pair has no address; the sandbox end gets its addresses without
// a prefix route and reaches everything through the network's gateway, an
// on-link next hop resolved by a permanent neighbour entry to the host end's
// MAC (IPv6: the link-local fe80::1). The host routes each sandbox address
// (/32, /128) to its veth. Per-sandbox cost is therefore independent of the
// number of sandboxes (a bridge adds cost per port and stops at 1024 ports,
// BR_PORT_BITS); see BENCHMARKS.md "Native networking" for the measurements.
//
// Firewall: one nftables table `inet podnet`, base rules written once per
// network; a sandbox only adds elements to maps (published ports).
//
// Network definitions are JSON files `<networksDir>/<name>.json`:
//   {"name": "...", "driver": "native", "subnets": [{"subnet": "10.89.16.0/20",
//    "gateway": "10.89.16.1"}, {"subnet": "fd00:89:16::/64", "gateway": "fd00:89:16::1"}],
//    "mtu": 1500, "internal": false, "isolate": true}
// IPAM state: `<stateDir>/networks/<name>/` (one lease file per address,
// created atomically with link(2), holding "containerId\nifname\n").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace podnet {
namespace native {

// What went wrong, for the caller to map onto its own error types.
enum class ErrorKind {
  kNone = 0,
  kSystem,           // a system call failed: code = -errno
  kInvalid,          // bad input (name, address, port, MAC, JSON), nothing was changed
  kNoNetwork,        // no definition file for the network
  kPoolExhausted,    // no free address left in a subnet
  kAddressInUse,     // a requested static address is leased to another container
  kPortInUse,        // a host port (protocol, host IP, port) is published by another sandbox
  kAlreadyAttached,  // this container + interface is already attached to the network
  kNoLibrary,        // libnftables cannot be loaded (message names the Debian package)
  kNftables,         // nftables refused a command (message has its error text)
  kUnsupported,      // a kernel feature is missing
};

struct Error {
  ErrorKind kind = ErrorKind::kNone;
  int code = 0;         // -errno (kSystem and wherever an errno applies), else 0
  std::string message;  // names the thing that failed
};

struct Config {
  std::string networksDir = "/etc/podnet/networks";
  std::string stateDir = "/var/lib/podnet";
};

struct Subnet {
  std::string subnet;   // CIDR, canonical ("10.89.16.0/20", "fd00:89:16::/64")
  std::string gateway;  // an address inside the subnet
};

struct Network {
  std::string name;
  std::vector<Subnet> subnets;  // at most one IPv4 and one IPv6
  int mtu = 0;                  // 0: kernel default (1500)
  bool internal = false;        // no masquerade, no route out of the subnets
  bool isolate = true;          // no traffic to or from other podnet networks
};

struct PortMapping {
  std::string protocol = "tcp";  // tcp, udp or sctp
  std::string hostIp;            // "" = every host address of the mapping's family
  uint16_t hostPort = 0;         // 1-65535
  uint16_t containerPort = 0;    // 1-65535
  uint16_t range = 1;            // hostPort..hostPort+range-1 -> containerPort..
};

struct AttachRequest {
  std::string network;
  std::string containerId;  // ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$
  std::string ifname = "eth0";
  std::string netnsPath;
  std::vector<std::string> staticIps;  // plain addresses, each inside one subnet
  std::string mac;                     // "" = random locally administered
  std::vector<PortMapping> ports;
};

struct IpConfig {
  std::string address;  // CIDR with the subnet's prefix ("10.89.16.5/20")
  std::string gateway;
};

struct Route {
  std::string dst;  // CIDR
  std::string gw;
};

struct Attachment {
  std::string network;
  std::string containerId;
  std::string ifname;      // inside the sandbox
  std::string hostIfname;  // host end of the veth pair
  std::string mac;         // sandbox end
  std::string hostMac;     // host end
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  std::vector<PortMapping> ports;
  int mtu = 0;
};

// Who holds an allocation (for gc).
struct Owner {
  std::string containerId;
  std::string ifname;
};

struct GcStats {
  int leases = 0;    // lease files removed
  int elements = 0;  // nftables elements removed
  int links = 0;     // host veth ends removed
};

// Reads and validates `<networksDir>/<name>.json`.
int LoadNetwork(const Config& cfg, const std::string& name, Network* out, Error* err);

// Checks that what the engine needs is here (libnftables loadable, nftables
// in the kernel); what CNI STATUS reports.
int Status(Error* err);

// Writes the network's base rules (table, chains, set elements for its
// subnets, the gateway addresses on the host, the accept rules in iptables'
// filter FORWARD chain when that chain exists). Idempotent; Attach calls it
// once per process and network and again if the table disappeared.
int EnsureNetwork(const Config& cfg, const std::string& name, Error* err);

// Removes the network's base rules and its IPAM directory (the definition
// file is the caller's); drops the table when no network is left. Idempotent.
int RemoveNetwork(const Config& cfg, const std::string& name, Error* err);

// Allocates addresses, publishes the ports, creates the veth pair with its
// peer straight inside `netnsPath`, addresses, routes and neighbours. On
// failure undoes everything it did. Writes an attachment record so that
// Detach and Check can run from another process.
int Attach(const Config& cfg, const AttachRequest& req, Attachment* out, Error* err);

// Undoes Attach. Idempotent: succeeds when the namespace, the link or the
// allocation is already gone. `keepLink`: the caller removes the namespace
// next, and the veth pair (with the host route) goes with it in the kernel's
// namespace cleanup, off the caller's time: deleting a link waits for an RCU
// grace period (synchronize_net), 10-30 ms on a loaded machine.
int Detach(const Config& cfg, const std::string& network, const std::string& containerId, const std::string& ifname,
           const std::string& netnsPath, Error* err, bool keepLink = false);

// Publishes more ports for an existing attachment (a warm sandbox taken from
// a pool gets its request's ports this way): the same checks and errors as
// Attach's (kPortInUse when another sandbox holds a host port), recorded so
// that Detach removes them with the rest. On failure changes nothing.
int AddPorts(const Config& cfg, const std::string& network, const std::string& containerId, const std::string& ifname,
             const std::vector<PortMapping>& ports, Attachment* out, Error* err);

// Verifies that the attachment is whole (lease, record, host link, sandbox
// link with its addresses, published ports); kInvalid/kSystem naming what is
// missing.
int Check(const Config& cfg, const std::string& network, const std::string& containerId, const std::string& ifname,
          const std::string& netnsPath, Error* err);

// The attachment record written by Attach (-ENOENT when there is none).
int GetAttachment(const Config& cfg, const std::string& network, const std::string& containerId,
                  const std::string& ifname, Attachment* out, Error* err);

// Every attachment record of the network.
int ListAttachments(const Config& cfg, const std::string& network, std::vector<Attachment>* out, Error* err);

// Every owner holding a lease or an attachment record on the network (an
// owner killed inside Attach holds a lease and no record yet).
int ListOwners(const Config& cfg, const std::string& network, std::vector<Owner>* out, Error* err);

// Releases what owners not in `live` hold on the network: leases, records,
// published-port elements (also elements whose address has no live lease,
// left by an owner killed half-way) and host links. With `onlyPrefix`, only
// owners whose container id starts with it are candidates (several runtimes
// sharing one network each collect their own).
int GC(const Config& cfg, const std::string& network, const std::vector<Owner>& live, GcStats* stats, Error* err,
       const std::string& onlyPrefix = "");

// The host end's name for an attachment: "pn" + 13 hex digits of a hash of
// network, container id and interface (stable, so another process finds it).
std::string HostIfname(const std::string& network, const std::string& containerId, const std::string& ifname);

}  // namespace native
}  // namespace podnet
