#include "protocol.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include <algorithm>

namespace podnet {
namespace cni {

const std::vector<std::string> kVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
const char* const kCurrentVersion = "1.1.0";

namespace {

bool Fail(Error* err, int code, std::string msg, std::string details = "") {
  err->code = code;
  err->msg = std::move(msg);
  err->details = std::move(details);
  return false;
}

std::string Env(const char* name) {
  const char* v = ::getenv(name);
  return v ? v : "";
}

std::string Quote(const std::string& s) { return Json(s).dump(); }

std::string SupportedList() {
  std::string s;
  for (const auto& v : kVersions) s += (s.empty() ? "" : ", ") + v;
  return s;
}

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// "10.0.0.5" or "10.0.0.5/24" (CONVENTIONS.md "ips": CIDR is allowed; the
// prefix is the network's, so only the address is kept).
bool PlainIp(const std::string& s, std::string* out) {
  auto slash = s.find('/');
  std::string addr = s.substr(0, slash);
  if (!IsIp(addr)) return false;
  if (slash != std::string::npos) {
    std::string p = s.substr(slash + 1);
    int max = addr.find(':') == std::string::npos ? 32 : 128;
    if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit) || std::stoi(p) > max) return false;
  }
  *out = addr;
  return true;
}

// A unicast Ethernet address, "xx:xx:xx:xx:xx:xx".
bool IsUnicastMac(const std::string& s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < 17; i++) {
    if (i % 3 == 2 ? s[i] != ':' : !isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return (strtoul(s.substr(0, 2).c_str(), nullptr, 16) & 1) == 0;
}

// The interface name rules of pkg/utils ValidateInterfaceName (IFNAMSIZ - 1).
const char* BadIfname(const std::string& s) {
  if (s.empty()) return "interface name is empty";
  if (s.size() > 15) return "interface name is too long (at most 15 bytes)";
  if (s == "." || s == "..") return "interface name is . or ..";
  for (unsigned char c : s) {
    if (c == '/' || c == ':' || isspace(c)) return "interface name contains / or : or whitespace";
  }
  return nullptr;
}

bool Port(const Json& o, const char* key, const std::string& where, int* out, Error* err) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer() || it->get<long long>() < 1 || it->get<long long>() > 65535) {
    return Fail(err, kInvalidConfig, where + "." + key + " must be a port number (1-65535)",
                it == o.end() ? "missing" : it->dump());
  }
  *out = it->get<int>();
  return true;
}

bool ParsePortMappings(const Json& list, std::vector<PortMapping>* out, Error* err) {
  if (!list.is_array()) return Fail(err, kInvalidConfig, "runtimeConfig.portMappings must be a list", list.dump());
  for (size_t i = 0; i < list.size(); i++) {
    const Json& o = list[i];
    std::string where = "runtimeConfig.portMappings[" + std::to_string(i) + "]";
    if (!o.is_object()) return Fail(err, kInvalidConfig, where + " must be an object", o.dump());
    PortMapping pm;
    if (!Port(o, "hostPort", where, &pm.hostPort, err) || !Port(o, "containerPort", where, &pm.containerPort, err))
      return false;
    pm.protocol = "tcp";
    if (auto it = o.find("protocol"); it != o.end()) {
      if (!it->is_string()) return Fail(err, kInvalidConfig, where + ".protocol must be a string", it->dump());
      pm.protocol = it->get<std::string>();
      std::transform(pm.protocol.begin(), pm.protocol.end(), pm.protocol.begin(), ::tolower);
      if (pm.protocol.empty()) pm.protocol = "tcp";
      // The key and value in the message: SPEC.md, error code 2.
      if (pm.protocol != "tcp" && pm.protocol != "udp" && pm.protocol != "sctp")
        return Fail(err, kUnsupportedField,
                    "unsupported field " + where + ".protocol=" + it->dump() + " (tcp, udp or sctp)");
    }
    if (auto it = o.find("hostIP"); it != o.end()) {
      if (!it->is_string() || (!it->get<std::string>().empty() && !IsIp(it->get<std::string>())))
        return Fail(err, kInvalidConfig, where + ".hostIP must be an IP address", it->dump());
      pm.hostIp = it->get<std::string>();
    }
    out->push_back(pm);
  }
  return true;
}

bool ParseIps(const Json& list, const std::string& where, std::vector<std::string>* out, Error* err) {
  if (!list.is_array()) return Fail(err, kInvalidConfig, where + " must be a list", list.dump());
  for (const auto& v : list) {
    std::string ip;
    if (!v.is_string() || !PlainIp(v.get<std::string>(), &ip))
      return Fail(err, kInvalidConfig, where + " holds a value that is not an IP address", v.dump());
    out->push_back(ip);
  }
  return true;
}

bool ParseRuntimeConfig(const Json& rc, Request* r, Error* err) {
  if (!rc.is_object()) return Fail(err, kInvalidConfig, "runtimeConfig must be an object", rc.dump());
  // Keys of capabilities this plugin does not declare are the runtime's
  // business (CONVENTIONS.md: runtimes pass only declared ones); ignored.
  if (auto it = rc.find("portMappings"); it != rc.end() && !it->is_null() && !ParsePortMappings(*it, &r->ports, err))
    return false;
  if (auto it = rc.find("ips"); it != rc.end() && !it->is_null() && !ParseIps(*it, "runtimeConfig.ips", &r->ips, err))
    return false;
  if (auto it = rc.find("mac"); it != rc.end() && !it->is_null()) {
    if (!it->is_string() || !IsUnicastMac(it->get<std::string>()))
      return Fail(err, kInvalidConfig, "runtimeConfig.mac must be a unicast MAC address", it->dump());
    r->mac = it->get<std::string>();
  }
  return true;
}

// CNI_ARGS "K=V;K=V" (pkg/types LoadArgs): IP (comma-separated, as podman
// sends static addresses) and MAC are used; K8S_* are known and ignored;
// anything else is an error unless IgnoreUnknown is set.
bool ParseCniArgs(const std::string& args, std::vector<std::string>* ips, std::string* mac, Error* err) {
  if (args.empty()) return true;
  std::vector<std::string> unknown;
  bool ignoreUnknown = false;
  size_t start = 0;
  while (start <= args.size()) {
    size_t end = args.find(';', start);
    if (end == std::string::npos) end = args.size();
    std::string pair = args.substr(start, end - start);
    start = end + 1;
    size_t eq = pair.find('=');
    if (eq == std::string::npos || pair.find('=', eq + 1) != std::string::npos)
      return Fail(err, kInvalidEnvironment, "CNI_ARGS: invalid pair " + Quote(pair));
    std::string k = pair.substr(0, eq), v = pair.substr(eq + 1);
    if (k == "IgnoreUnknown") {
      ignoreUnknown = v == "1" || v == "true" || v == "True" || v == "TRUE";
    } else if (k == "IP") {
      for (size_t s = 0; s <= v.size();) {
        size_t c = v.find(',', s);
        if (c == std::string::npos) c = v.size();
        std::string ip;
        if (!PlainIp(v.substr(s, c - s), &ip))
          return Fail(err, kInvalidEnvironment, "CNI_ARGS: IP " + Quote(v) + " is not a list of IP addresses");
        ips->push_back(ip);
        s = c + 1;
      }
    } else if (k == "MAC") {
      if (!IsUnicastMac(v))
        return Fail(err, kInvalidEnvironment, "CNI_ARGS: MAC " + Quote(v) + " is not a unicast MAC address");
      *mac = v;
    } else if (k.rfind("K8S_", 0) != 0) {
      unknown.push_back(pair);
    }
  }
  if (!unknown.empty() && !ignoreUnknown)
    return Fail(err, kInvalidEnvironment, "CNI_ARGS: unknown args " + Json(unknown).dump());
  return true;
}

bool ParseValidAttachments(const Json& conf, std::vector<Owner>* out, Error* err) {
  auto it = conf.find("cni.dev/valid-attachments");
  // Without the list every attachment would look stale: refuse rather than
  // release everything (SPEC.md "GC": the runtime must provide it).
  if (it == conf.end() || !it->is_array())
    return Fail(err, kInvalidConfig, "GC needs cni.dev/valid-attachments (a list)");
  for (const auto& a : *it) {
    if (!a.is_object() || !a.contains("containerID") || !a["containerID"].is_string() || !a.contains("ifname") ||
        !a["ifname"].is_string())
      return Fail(err, kInvalidConfig, "cni.dev/valid-attachments entries need containerID and ifname", a.dump());
    out->push_back({a["containerID"].get<std::string>(), a["ifname"].get<std::string>()});
  }
  return true;
}

}  // namespace

bool ValidName(const std::string& s) {
  if (s.empty() || !isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (unsigned char c : s) {
    if (!isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool VersionAtLeast(const std::string& version, const std::string& min) {
  int a[3] = {0, 0, 0}, b[3] = {0, 0, 0};
  sscanf(version.c_str(), "%d.%d.%d", &a[0], &a[1], &a[2]);
  sscanf(min.c_str(), "%d.%d.%d", &b[0], &b[1], &b[2]);
  return std::lexicographical_compare(b, b + 3, a, a + 3) || std::equal(a, a + 3, b);
}

bool ParseCommand(const char* value, Command* out, Error* err) {
  std::string v = value ? value : "";
  static const std::pair<const char*, Command> kCommands[] = {
      {"ADD", Command::kAdd}, {"DEL", Command::kDel},       {"CHECK", Command::kCheck},
      {"GC", Command::kGc},   {"STATUS", Command::kStatus}, {"VERSION", Command::kVersion}};
  if (v.empty()) return Fail(err, kInvalidEnvironment, "required env variables [CNI_COMMAND] missing");
  for (const auto& [name, cmd] : kCommands) {
    if (v == name) {
      *out = cmd;
      return true;
    }
  }
  return Fail(err, kInvalidEnvironment, "unknown CNI_COMMAND: " + v);
}

bool ParseRequest(Command command, const std::string& stdin, Request* r, Error* err) {
  r->command = command;
  bool attach = command == Command::kAdd || command == Command::kDel || command == Command::kCheck;

  // Environment (pkg/skel getCmdArgsFromEnv): CNI_NETNS is optional on DEL
  // (the namespace may be gone); CNI_PATH is not needed, nothing is delegated.
  if (attach) {
    r->containerId = Env("CNI_CONTAINERID");
    r->netns = Env("CNI_NETNS");
    r->ifname = Env("CNI_IFNAME");
    std::vector<std::string> missing;
    if (r->containerId.empty()) missing.push_back("CNI_CONTAINERID");
    if (r->netns.empty() && command != Command::kDel) missing.push_back("CNI_NETNS");
    if (r->ifname.empty()) missing.push_back("CNI_IFNAME");
    if (!missing.empty()) {
      std::string names;
      for (const auto& m : missing) names += (names.empty() ? "" : ",") + m;
      return Fail(err, kInvalidEnvironment, "required env variables [" + names + "] missing");
    }
    if (!ValidName(r->containerId))
      return Fail(err, kInvalidEnvironment, "invalid characters in CNI_CONTAINERID", r->containerId);
    if (const char* why = BadIfname(r->ifname))
      return Fail(err, kInvalidEnvironment, std::string("CNI_IFNAME: ") + why, r->ifname);
    if (!r->netns.empty() && r->netns[0] != '/')
      return Fail(err, kInvalidEnvironment, "CNI_NETNS must be an absolute path", r->netns);
  }

  Json conf = Json::parse(stdin, nullptr, false);
  if (conf.is_discarded()) return Fail(err, kDecodingFailure, "error decoding network config: not JSON");
  if (!conf.is_object()) return Fail(err, kDecodingFailure, "error decoding network config: not a JSON object");

  // pkg/version ConfigDecoder: no cniVersion means 0.1.0, which this plugin
  // does not speak; the version must be one it lists exactly.
  auto ver = conf.find("cniVersion");
  if (ver != conf.end() && !ver->is_string())
    return Fail(err, kDecodingFailure, "error decoding network config: cniVersion must be a string");
  r->cniVersion = ver == conf.end() ? "0.1.0" : ver->get<std::string>();
  if (std::find(kVersions.begin(), kVersions.end(), r->cniVersion) == kVersions.end()) {
    std::string v = r->cniVersion;
    r->cniVersion.clear();  // the error reports the plugin's current version
    return Fail(err, kIncompatibleVersion, "incompatible CNI versions",
                "config is " + Quote(v) + ", plugin supports [" + SupportedList() + "]");
  }
  // CHECK came with 0.4.0, GC and STATUS with 1.1.0 (SPEC.md "Released versions").
  if (command == Command::kCheck && !VersionAtLeast(r->cniVersion, "0.4.0"))
    return Fail(err, kIncompatibleVersion, "config version " + r->cniVersion + " does not allow CHECK");
  if ((command == Command::kGc || command == Command::kStatus) && !VersionAtLeast(r->cniVersion, "1.1.0"))
    return Fail(err, kIncompatibleVersion,
                "config version " + r->cniVersion + " does not allow " + (command == Command::kGc ? "GC" : "STATUS"));

  auto name = conf.find("name");
  if (name == conf.end() || !name->is_string() || name->get<std::string>().empty())
    return Fail(err, kInvalidConfig, "missing network name");
  r->name = name->get<std::string>();
  if (!ValidName(r->name)) return Fail(err, kInvalidConfig, "invalid characters found in network name", r->name);

  r->network = r->name;
  if (auto it = conf.find("network"); it != conf.end()) {
    if (!it->is_string() || !ValidName(it->get<std::string>()))
      return Fail(err, kInvalidConfig, "network must be a podnet network name", it->dump());
    r->network = it->get<std::string>();
  }
  for (auto [key, dst] : {std::pair<const char*, std::string*>{"networksDir", &r->networksDir},
                          std::pair<const char*, std::string*>{"stateDir", &r->stateDir}}) {
    if (auto it = conf.find(key); it != conf.end()) {
      if (!it->is_string() || it->get<std::string>().empty() || it->get<std::string>()[0] != '/')
        return Fail(err, kInvalidConfig, std::string(key) + " must be an absolute path", it->dump());
      *dst = it->get<std::string>();
    }
  }
  if (auto it = conf.find("linkGoesWithNamespace"); it != conf.end()) {
    if (!it->is_boolean()) return Fail(err, kInvalidConfig, "linkGoesWithNamespace must be true or false", it->dump());
    r->linkGoesWithNamespace = it->get<bool>();
  }
  if (auto it = conf.find("dns"); it != conf.end()) {
    if (!it->is_object()) return Fail(err, kInvalidConfig, "dns must be an object", it->dump());
    r->dns = *it;
  }

  if (auto it = conf.find("runtimeConfig"); it != conf.end() && !ParseRuntimeConfig(*it, r, err)) return false;
  if (attach) {
    std::vector<std::string> argIps;
    std::string argMac;
    if (!ParseCniArgs(Env("CNI_ARGS"), &argIps, &argMac, err)) return false;
    if (r->ips.empty()) r->ips = argIps;
    if (r->mac.empty()) r->mac = argMac;
  }

  if (auto it = conf.find("prevResult"); it != conf.end() && !it->is_null()) {
    if (!it->is_object()) return Fail(err, kDecodingFailure, "error decoding prevResult: not a JSON object");
    // A result must be of the configuration's version (pkg/version
    // ParsePrevResult; runtimes convert it before passing it on).
    if (auto v = it->find("cniVersion"); v != it->end() && (!v->is_string() || *v != r->cniVersion))
      return Fail(err, kIncompatibleVersion, "prevResult version does not match the config version",
                  "prevResult is " + v->dump() + ", config is " + Quote(r->cniVersion));
    if (!DecodeResult(*it, &r->prevResult, err)) return false;
    r->hasPrevResult = true;
  }
  if (command == Command::kGc && !ParseValidAttachments(conf, &r->validAttachments, err)) return false;
  return true;
}

Json VersionResult(const std::string& stdin) {
  Json in = Json::parse(stdin, nullptr, false);
  std::string v = kCurrentVersion;
  if (in.is_object() && in.contains("cniVersion") && in["cniVersion"].is_string()) v = in["cniVersion"];
  return Json{{"cniVersion", v}, {"supportedVersions", kVersions}};
}

Json EncodeResult(const Result& r, const std::string& version) {
  bool withIpVersion = !VersionAtLeast(version, "1.0.0");
  bool withMtu = VersionAtLeast(version, "1.1.0");
  Json out = {{"cniVersion", version}};
  Json ifs = Json::array();
  for (const auto& i : r.interfaces) {
    Json o = {{"name", i.name}};
    if (!i.mac.empty()) o["mac"] = i.mac;
    if (withMtu && i.mtu > 0) o["mtu"] = i.mtu;
    if (!i.sandbox.empty()) o["sandbox"] = i.sandbox;
    ifs.push_back(o);
  }
  out["interfaces"] = ifs;
  Json ips = Json::array();
  for (const auto& ip : r.ips) {
    Json o;
    if (withIpVersion) o["version"] = ip.address.find(':') == std::string::npos ? "4" : "6";
    o["address"] = ip.address;
    if (!ip.gateway.empty()) o["gateway"] = ip.gateway;
    if (ip.interface >= 0) o["interface"] = ip.interface;
    ips.push_back(o);
  }
  out["ips"] = ips;
  if (!r.routes.empty()) {
    Json routes = Json::array();
    for (const auto& rt : r.routes) {
      Json o = {{"dst", rt.dst}};
      if (!rt.gw.empty()) o["gw"] = rt.gw;
      routes.push_back(o);
    }
    out["routes"] = routes;
  }
  out["dns"] = r.dns.is_object() ? r.dns : Json::object();
  return out;
}

bool DecodeResult(const Json& j, Result* out, Error* err) {
  auto bad = [&](const std::string& what, const Json& v) {
    return Fail(err, kDecodingFailure, "error decoding prevResult: " + what, v.dump());
  };
  auto str = [](const Json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (const char* k : {"interfaces", "ips", "routes"}) {
    if (j.contains(k) && !j[k].is_null() && !j[k].is_array()) return bad(std::string(k) + " must be a list", j[k]);
  }
  if (j.contains("interfaces") && j["interfaces"].is_array()) {
    for (const auto& i : j["interfaces"]) {
      if (!i.is_object() || !i.contains("name") || !i["name"].is_string()) return bad("interface without a name", i);
      ResultInterface ri{str(i, "name"), str(i, "mac"), str(i, "sandbox"), 0};
      if (i.contains("mtu") && i["mtu"].is_number_unsigned()) ri.mtu = i["mtu"].get<int>();
      out->interfaces.push_back(ri);
    }
  }
  if (j.contains("ips") && j["ips"].is_array()) {
    for (const auto& ip : j["ips"]) {
      if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string() ||
          ip["address"].get<std::string>().find('/') == std::string::npos)
        return bad("address without a prefix", ip);
      ResultIp ri{str(ip, "address"), str(ip, "gateway"), -1};
      if (ip.contains("interface")) {
        if (!ip["interface"].is_number_unsigned() || ip["interface"].get<size_t>() >= out->interfaces.size())
          return bad("interface index out of range", ip);
        ri.interface = ip["interface"].get<int>();
      }
      out->ips.push_back(ri);
    }
  }
  if (j.contains("routes") && j["routes"].is_array()) {
    for (const auto& rt : j["routes"]) {
      if (!rt.is_object() || !rt.contains("dst") || !rt["dst"].is_string()) return bad("route without dst", rt);
      out->routes.push_back({str(rt, "dst"), str(rt, "gw")});
    }
  }
  if (j.contains("dns") && j["dns"].is_object()) out->dns = j["dns"];
  return true;
}

Json EncodeError(const Error& e, const std::string& version) {
  Json out = {{"cniVersion", version.empty() ? kCurrentVersion : version}, {"code", e.code}, {"msg", e.msg}};
  if (!e.details.empty()) out["details"] = e.details;
  return out;
}

}  // namespace cni
}  // namespace podnet
