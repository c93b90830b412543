// The CNI protocol as a plugin sees it (CNI spec 1.1.0 SPEC.md, sections 2 and
// 5; the reference plugin skeleton containernetworking/cni pkg/skel): the
// CNI_* environment and the configuration on stdin in, a result or an error
// JSON on stdout out. Pure: no system calls besides reading the environment,
// so every rule here is testable without root.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace podnet {
namespace cni {

using Json = nlohmann::ordered_json;

// The spec's well-known error codes (SPEC.md "Error") and podnet's own (100+).
enum Code {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodingFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kNotAvailable = 50,
  kLimitedConnectivity = 51,
  // podnet's own
  kSystem = 100,           // a system call failed; details name the errno
  kPoolExhausted = 101,    // no free address left in the network
  kAddressInUse = 102,     // a requested address is leased to another container
  kPortInUse = 103,        // a requested host port is published by another sandbox
  kAlreadyAttached = 104,  // this container and interface are already on the network
  kFirewall = 105,         // nftables refused a command
  kCheckFailed = 106,      // CHECK found the attachment incomplete
};

struct Error {
  int code = 0;
  std::string msg;
  std::string details;
};

enum class Command { kAdd, kDel, kCheck, kVersion, kGc, kStatus };

// The versions this plugin speaks, oldest first (VERSION's supportedVersions).
extern const std::vector<std::string> kVersions;
// The newest of them: what an error reports when the input names none it knows.
extern const char* const kCurrentVersion;

struct PortMapping {
  std::string protocol;  // tcp, udp or sctp
  std::string hostIp;    // "" = every host address
  int hostPort = 0;
  int containerPort = 0;
};

struct Owner {
  std::string containerId;
  std::string ifname;
};

// One interface, address and route of a CNI result (SPEC.md "ADD Success").
struct ResultInterface {
  std::string name;
  std::string mac;
  std::string sandbox;  // "" for a host interface
  int mtu = 0;          // 0 = not reported
};
struct ResultIp {
  std::string address;  // CIDR
  std::string gateway;  // "" = none
  int interface = -1;   // index into interfaces, -1 = none
};
struct ResultRoute {
  std::string dst;
  std::string gw;
};
struct Result {
  std::vector<ResultInterface> interfaces;
  std::vector<ResultIp> ips;
  std::vector<ResultRoute> routes;
  Json dns = Json::object();
};

struct Request {
  Command command = Command::kVersion;
  std::string cniVersion;   // the configuration's, one of kVersions
  std::string name;         // the CNI network (the conflist's name)
  std::string network;      // the podnet network: "network" in the config, else name
  std::string networksDir;  // "networksDir" in the config; "" = the engine's default
  std::string stateDir;     // "stateDir" in the config; "" = the engine's default
  // "linkGoesWithNamespace": the runtime removes the namespace right after DEL
  // (podman, containerd's CRI), so DEL leaves the veth pair to that removal.
  bool linkGoesWithNamespace = false;

  std::string containerId;
  std::string netns;
  std::string ifname;

  std::vector<PortMapping> ports;  // runtimeConfig.portMappings
  std::vector<std::string> ips;    // runtimeConfig.ips, else CNI_ARGS IP (plain addresses)
  std::string mac;                 // runtimeConfig.mac, else CNI_ARGS MAC

  bool hasPrevResult = false;
  Result prevResult;
  Json dns;  // the configuration's dns, echoed in the result

  std::vector<Owner> validAttachments;  // GC: cni.dev/valid-attachments
};

// Reads CNI_COMMAND. Fails with code 4 when it is missing or unknown.
bool ParseCommand(const char* value, Command* out, Error* err);

// Builds the request from the CNI_* environment and stdin. Every check that
// needs no system call happens here, so bad input fails before anything is
// touched.
bool ParseRequest(Command command, const std::string& stdin, Request* out, Error* err);

// VERSION's answer: the input's cniVersion (if it is a version string) and the
// versions spoken.
Json VersionResult(const std::string& stdin);

// A result in the shape of `version`: 0.3.x/0.4.0 give each address a
// "version" ("4"/"6"); 1.0.0 dropped it (SPEC.md, "Released versions").
Json EncodeResult(const Result& r, const std::string& version);

// Parses a result (prevResult) of any spoken version.
bool DecodeResult(const Json& j, Result* out, Error* err);

// The error object of SPEC.md "Error".
Json EncodeError(const Error& e, const std::string& version);

// Whether `version` is at least `min` (both "x.y.z").
bool VersionAtLeast(const std::string& version, const std::string& min);

// ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$, the spec's rule for container ids and names.
bool ValidName(const std::string& s);

}  // namespace cni
}  // namespace podnet
