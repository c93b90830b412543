#include "commands.h"

#include <errno.h>
#include <sys/stat.h>

#include <algorithm>

#include "../core/errno_name.h"
#include "../core/fd.h"
#include "../core/native/engine.h"
#include "../core/netns.h"

namespace podnet {
namespace cni {
namespace {

namespace nat = podnet::native;

bool Fail(Error* err, int code, std::string msg, std::string details = "") {
  *err = {code, std::move(msg), std::move(details)};
  return false;
}

// The engine's error kinds onto the spec's codes (SPEC.md "Error") and
// podnet's own; the engine's message names the thing.
bool EngineFailed(const nat::Error& e, Error* err) {
  switch (e.kind) {
    case nat::ErrorKind::kInvalid:
    case nat::ErrorKind::kNoNetwork:
      return Fail(err, kInvalidConfig, e.message);
    case nat::ErrorKind::kPoolExhausted:
      return Fail(err, kPoolExhausted, e.message);
    case nat::ErrorKind::kAddressInUse:
      return Fail(err, kAddressInUse, e.message);
    case nat::ErrorKind::kPortInUse:
      return Fail(err, kPortInUse, e.message);
    case nat::ErrorKind::kAlreadyAttached:
      return Fail(err, kAlreadyAttached, e.message);
    case nat::ErrorKind::kNftables:
      return Fail(err, kFirewall, e.message);
    case nat::ErrorKind::kNoLibrary:
    case nat::ErrorKind::kUnsupported:
      return Fail(err, kNotAvailable, e.message);
    default:
      // A lock another process holds or an interrupted call clears by itself.
      if (e.code == -EAGAIN || e.code == -EINTR) return Fail(err, kTryAgainLater, e.message, ErrnoName(-e.code));
      return Fail(err, kSystem, e.message, e.code ? ErrnoName(-e.code) : "");
  }
}

nat::Config ConfigOf(const Request& req) {
  nat::Config cfg;
  if (!req.networksDir.empty()) cfg.networksDir = req.networksDir;
  if (!req.stateDir.empty()) cfg.stateDir = req.stateDir;
  return cfg;
}

// Whether `path` is a network namespace; if not, err says why (code 4:
// CNI_NETNS is the invalid variable).
bool IsNetns(const std::string& path, Error* err) {
  struct stat st;
  int fd = OpenNetnsFd(path.c_str(), &st);
  if (fd >= 0) {
    Fd closer(fd);
    return true;
  }
  if (fd == -kNotNetns) return Fail(err, kInvalidEnvironment, "CNI_NETNS " + path + " is not a network namespace");
  return Fail(err, kInvalidEnvironment, "CNI_NETNS " + path + " cannot be opened", ErrnoName(-fd));
}

bool Add(const Request& req, Result* result, Error* err) {
  if (!IsNetns(req.netns, err)) return false;
  nat::AttachRequest ar;
  ar.network = req.network;
  ar.containerId = req.containerId;
  ar.ifname = req.ifname;
  ar.netnsPath = req.netns;
  ar.staticIps = req.ips;
  ar.mac = req.mac;
  for (const auto& p : req.ports) {
    nat::PortMapping pm;
    pm.protocol = p.protocol;
    pm.hostIp = p.hostIp;
    pm.hostPort = static_cast<uint16_t>(p.hostPort);
    pm.containerPort = static_cast<uint16_t>(p.containerPort);
    ar.ports.push_back(pm);
  }
  nat::Attachment a;
  nat::Error e;
  if (nat::Attach(ConfigOf(req), ar, &a, &e) < 0) return EngineFailed(e, err);

  // A chained ADD passes the previous result on with this plugin's additions
  // (SPEC.md section 5: "must output it as their result, with any possible
  // modifications").
  *result = req.hasPrevResult ? req.prevResult : Result{};
  result->interfaces.push_back({a.hostIfname, a.hostMac, "", a.mtu});
  int sandbox = static_cast<int>(result->interfaces.size());
  result->interfaces.push_back({a.ifname, a.mac, req.netns, a.mtu});
  for (const auto& ip : a.ips) result->ips.push_back({ip.address, ip.gateway, sandbox});
  for (const auto& r : a.routes) result->routes.push_back({r.dst, r.gw});
  if (result->dns.empty() && req.dns.is_object()) result->dns = req.dns;
  return true;
}

// Best effort and repeatable (SPEC.md "DEL"): a namespace that is gone, or a
// path that no longer is one (unmounted, file left), only means there is no
// sandbox end left to remove. Deleting the veth pair waits for an RCU grace
// period (15-20 ms here, most of a DEL); with linkGoesWithNamespace the
// kernel's namespace cleanup takes it instead, off the runtime's time (a
// later ADD of the same container and interface removes a host end left so).
bool Del(const Request& req, Error* err) {
  std::string netns;
  Error ignored;
  if (!req.netns.empty() && IsNetns(req.netns, &ignored)) netns = req.netns;
  nat::Error e;
  if (nat::Detach(ConfigOf(req), req.network, req.containerId, req.ifname, netns, &e, req.linkGoesWithNamespace) < 0 &&
      e.kind != nat::ErrorKind::kNoNetwork)
    return EngineFailed(e, err);
  return true;
}

// SPEC.md "CHECK": the attachment must be whole, and be the one prevResult
// describes (interface, MAC and addresses).
bool Check(const Request& req, Error* err) {
  if (!req.hasPrevResult) return Fail(err, kInvalidConfig, "CHECK needs prevResult (the ADD result)");
  if (!IsNetns(req.netns, err)) return false;
  nat::Config cfg = ConfigOf(req);
  nat::Error e;
  if (nat::Check(cfg, req.network, req.containerId, req.ifname, req.netns, &e) < 0) {
    if (e.kind == nat::ErrorKind::kInvalid || e.kind == nat::ErrorKind::kSystem)
      return Fail(err, kCheckFailed, e.message, e.code ? ErrnoName(-e.code) : "");
    return EngineFailed(e, err);
  }
  nat::Attachment a;
  if (nat::GetAttachment(cfg, req.network, req.containerId, req.ifname, &a, &e) < 0) return EngineFailed(e, err);
  const auto& ifs = req.prevResult.interfaces;
  auto it = std::find_if(ifs.begin(), ifs.end(),
                         [&](const ResultInterface& i) { return i.name == req.ifname && i.sandbox == req.netns; });
  if (it == ifs.end()) return Fail(err, kCheckFailed, "prevResult has no interface " + req.ifname + " in " + req.netns);
  if (!it->mac.empty() && it->mac != a.mac)
    return Fail(err, kCheckFailed, "interface " + req.ifname + " has MAC " + a.mac + ", prevResult says " + it->mac);
  for (const auto& ip : a.ips) {
    const auto& ips = req.prevResult.ips;
    if (std::none_of(ips.begin(), ips.end(), [&](const ResultIp& p) { return p.address == ip.address; }))
      return Fail(err, kCheckFailed, "address " + ip.address + " is missing from prevResult");
  }
  return true;
}

// SPEC.md "GC": release what attachments outside the valid list hold. The
// runtime lists only its own containers; sandboxes that podnet's API made on
// the same network (container ids with the API's "podnet-" prefix,
// lib/runtime/runtime.ts netnsPrefix) are the API's to collect, so they stay.
bool Gc(const Request& req, Error* err) {
  nat::Config cfg = ConfigOf(req);
  std::vector<nat::Owner> live;
  for (const auto& o : req.validAttachments) live.push_back({o.containerId, o.ifname});
  std::vector<nat::Attachment> records;
  nat::Error e;
  if (nat::ListAttachments(cfg, req.network, &records, &e) < 0 && e.kind != nat::ErrorKind::kNoNetwork)
    return EngineFailed(e, err);
  for (const auto& a : records)
    if (a.containerId.rfind("podnet-", 0) == 0) live.push_back({a.containerId, a.ifname});
  nat::GcStats stats;
  if (nat::GC(cfg, req.network, live, &stats, &e) < 0 && e.kind != nat::ErrorKind::kNoNetwork)
    return EngineFailed(e, err);
  return true;
}

// SPEC.md "STATUS": 50 when an ADD could not succeed (no libnftables, no
// nftables in the kernel, no such network).
bool Status(const Request& req, Error* err) {
  nat::Error e;
  nat::Network net;
  if (nat::Status(&e) < 0 || nat::LoadNetwork(ConfigOf(req), req.network, &net, &e) < 0)
    return Fail(err, kNotAvailable, e.message, e.code ? ErrnoName(-e.code) : "");
  return true;
}

}  // namespace

bool Execute(const Request& req, Result* result, Error* err) {
  switch (req.command) {
    case Command::kAdd:
      return Add(req, result, err);
    case Command::kDel:
      return Del(req, err);
    case Command::kCheck:
      return Check(req, err);
    case Command::kGc:
      return Gc(req, err);
    case Command::kStatus:
      return Status(req, err);
    case Command::kVersion:
      break;
  }
  return true;
}

}  // namespace cni
}  // namespace podnet
