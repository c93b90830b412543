// N-API adapter of the native network engine (csrc/core/native): converts JS
// objects to engine structs and back, runs the engine on a libuv pool thread
// (the engine never changes the calling thread's namespace: it opens sockets
// inside namespaces on threads of their own, csrc/core/nsocket.h), and turns
// engine errors into coded errors.
#include "../core/native/engine.h"
#include "common.h"

namespace podnet {
namespace {

namespace nn = podnet::native;

const char* CodeOf(nn::ErrorKind k) {
  switch (k) {
    case nn::ErrorKind::kInvalid:
      return "ERR_INVALID_ARGUMENT";
    case nn::ErrorKind::kNoNetwork:
      return "ERR_NATIVE_NETWORK_NOT_FOUND";
    case nn::ErrorKind::kPoolExhausted:
      return "ERR_NATIVE_POOL_EXHAUSTED";
    case nn::ErrorKind::kAddressInUse:
      return "ERR_NATIVE_ADDRESS_IN_USE";
    case nn::ErrorKind::kPortInUse:
      return "ERR_NATIVE_PORT_IN_USE";
    case nn::ErrorKind::kAlreadyAttached:
      return "ERR_NATIVE_ALREADY_ATTACHED";
    case nn::ErrorKind::kNoLibrary:
      return "ERR_NATIVE_NO_LIBRARY";
    case nn::ErrorKind::kNftables:
      return "ERR_NATIVE_NFTABLES";
    case nn::ErrorKind::kUnsupported:
      return "ERR_NATIVE_UNSUPPORTED";
    default:
      return nullptr;
  }
}

[[noreturn]] void Throw(const nn::Error& e) {
  NativeError n;
  const char* code = CodeOf(e.kind);
  if (code) {
    n.code = code;
  } else {
    n.code = ErrnoName(-e.code);
    n.err = -e.code;
  }
  n.message = e.message;
  throw n;
}

std::string Str(const Napi::Object& o, const char* key, const std::string& def = "") {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : def;
}

int Int(const Napi::Object& o, const char* key, int def) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : def;
}

nn::Config ConfigOf(const Napi::Value& v) {
  nn::Config c;
  if (!v.IsObject()) return c;
  auto o = v.As<Napi::Object>();
  c.networksDir = Str(o, "networksDir", c.networksDir);
  c.stateDir = Str(o, "stateDir", c.stateDir);
  return c;
}

uint16_t Port(const Napi::Object& o, const char* key, int def) {
  int v = Int(o, key, def);
  if (v < 0 || v > 65535) ThrowCode("ERR_INVALID_ARGUMENT", std::string("invalid ") + key + " " + std::to_string(v));
  return static_cast<uint16_t>(v);
}

Napi::Object ToJs(Napi::Env env, const nn::Attachment& a) {
  auto o = Napi::Object::New(env);
  o.Set("network", a.network);
  o.Set("containerId", a.containerId);
  o.Set("ifname", a.ifname);
  o.Set("hostIfname", a.hostIfname);
  o.Set("mac", a.mac);
  o.Set("hostMac", a.hostMac);
  o.Set("mtu", a.mtu);
  auto ips = Napi::Array::New(env, a.ips.size());
  for (size_t i = 0; i < a.ips.size(); i++) {
    auto ip = Napi::Object::New(env);
    ip.Set("address", a.ips[i].address);
    ip.Set("gateway", a.ips[i].gateway);
    ips.Set(i, ip);
  }
  o.Set("ips", ips);
  auto routes = Napi::Array::New(env, a.routes.size());
  for (size_t i = 0; i < a.routes.size(); i++) {
    auto r = Napi::Object::New(env);
    r.Set("dst", a.routes[i].dst);
    r.Set("gw", a.routes[i].gw);
    routes.Set(i, r);
  }
  o.Set("routes", routes);
  auto ports = Napi::Array::New(env, a.ports.size());
  for (size_t i = 0; i < a.ports.size(); i++) {
    auto p = Napi::Object::New(env);
    p.Set("protocol", a.ports[i].protocol);
    p.Set("hostIp", a.ports[i].hostIp);
    p.Set("hostPort", a.ports[i].hostPort);
    p.Set("containerPort", a.ports[i].containerPort);
    p.Set("range", a.ports[i].range);
    ports.Set(i, p);
  }
  o.Set("ports", ports);
  return o;
}

std::vector<nn::PortMapping> PortsOf(const Napi::Value& v) {
  std::vector<nn::PortMapping> out;
  if (!v.IsArray()) return out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    auto p = a.Get(i).As<Napi::Object>();
    nn::PortMapping m;
    m.protocol = Str(p, "protocol", "tcp");
    m.hostIp = Str(p, "hostIp");
    m.hostPort = Port(p, "hostPort", 0);
    m.containerPort = Port(p, "containerPort", 0);
    m.range = Port(p, "range", 1);
    out.push_back(m);
  }
  return out;
}

// nativeAttach(config, request): Promise<Attachment>
Napi::Value Attach(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  auto r = info[1].As<Napi::Object>();
  nn::AttachRequest req;
  req.network = Str(r, "network");
  req.containerId = Str(r, "containerId");
  req.ifname = Str(r, "ifname", "eth0");
  req.netnsPath = Str(r, "netnsPath");
  req.mac = Str(r, "mac");
  if (r.Get("staticIps").IsArray()) {
    auto a = r.Get("staticIps").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) req.staticIps.push_back(a.Get(i).ToString().Utf8Value());
  }
  req.ports = PortsOf(r.Get("ports"));
  auto out = std::make_shared<nn::Attachment>();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (nn::Attach(cfg, req, out.get(), &e) < 0) Throw(e);
      },
      [=](Napi::Env env) { return ToJs(env, *out); });
}

// nativeAddPorts(config, network, containerId, ifname, ports): Promise<Attachment>
Napi::Value AddPorts(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string network = info[1].ToString().Utf8Value(), cid = info[2].ToString().Utf8Value();
  std::string ifname = info[3].ToString().Utf8Value();
  auto ports = PortsOf(info[4]);
  auto out = std::make_shared<nn::Attachment>();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (nn::AddPorts(cfg, network, cid, ifname, ports, out.get(), &e) < 0) Throw(e);
      },
      [=](Napi::Env env) { return ToJs(env, *out); });
}

// nativeCheck(config, network, containerId, ifname, netnsPath): Promise<void>
template <int (*Fn)(const nn::Config&, const std::string&, const std::string&, const std::string&, const std::string&,
                    nn::Error*)>
Napi::Value ByOwner(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string network = info[1].ToString().Utf8Value(), cid = info[2].ToString().Utf8Value();
  std::string ifname = info[3].ToString().Utf8Value();
  std::string netns = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (Fn(cfg, network, cid, ifname, netns, &e) < 0) Throw(e);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// nativeDetach(config, network, containerId, ifname, netnsPath, keepLink): Promise<void>
Napi::Value Detach(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string network = info[1].ToString().Utf8Value(), cid = info[2].ToString().Utf8Value();
  std::string ifname = info[3].ToString().Utf8Value();
  std::string netns = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  bool keepLink = info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (nn::Detach(cfg, network, cid, ifname, netns, &e, keepLink) < 0) Throw(e);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// nativeEnsureNetwork / nativeRemoveNetwork(config, name): Promise<void>
template <int (*Fn)(const nn::Config&, const std::string&, nn::Error*)>
Napi::Value ByNetwork(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string name = info[1].ToString().Utf8Value();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (Fn(cfg, name, &e) < 0) Throw(e);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// nativeAttachments(config, network): Promise<Attachment[]>
Napi::Value Attachments(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string name = info[1].ToString().Utf8Value();
  auto out = std::make_shared<std::vector<nn::Attachment>>();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (nn::ListAttachments(cfg, name, out.get(), &e) < 0) Throw(e);
      },
      [=](Napi::Env env) {
        auto a = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); i++) a.Set(i, ToJs(env, (*out)[i]));
        return a;
      });
}

// nativeOwners(config, network): Promise<{containerId, ifname}[]>
Napi::Value Owners(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string name = info[1].ToString().Utf8Value();
  auto out = std::make_shared<std::vector<nn::Owner>>();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (nn::ListOwners(cfg, name, out.get(), &e) < 0) Throw(e);
      },
      [=](Napi::Env env) {
        auto a = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); i++) {
          auto o = Napi::Object::New(env);
          o.Set("containerId", (*out)[i].containerId);
          o.Set("ifname", (*out)[i].ifname);
          a.Set(i, o);
        }
        return a;
      });
}

// nativeGc(config, network, live: {containerId, ifname}[], onlyPrefix?): Promise<{leases, elements, links}>
Napi::Value Gc(const Napi::CallbackInfo& info) {
  auto cfg = ConfigOf(info[0]);
  std::string name = info[1].ToString().Utf8Value();
  std::vector<nn::Owner> live;
  auto a = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    auto o = a.Get(i).As<Napi::Object>();
    live.push_back({Str(o, "containerId"), Str(o, "ifname", "eth0")});
  }
  std::string prefix = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  auto stats = std::make_shared<nn::GcStats>();
  return RunAsync(
      info.Env(),
      [=] {
        nn::Error e;
        if (nn::GC(cfg, name, live, stats.get(), &e, prefix) < 0) Throw(e);
      },
      [=](Napi::Env env) {
        auto o = Napi::Object::New(env);
        o.Set("leases", stats->leases);
        o.Set("elements", stats->elements);
        o.Set("links", stats->links);
        return o;
      });
}

// nativeStatus(): Promise<void>, libnftables and nftables usable.
Napi::Value Status(const Napi::CallbackInfo& info) {
  return RunAsync(
      info.Env(),
      [] {
        nn::Error e;
        if (nn::Status(&e) < 0) Throw(e);
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// nativeHostIfname(network, containerId, ifname): string
Napi::Value HostIfname(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), nn::HostIfname(info[0].ToString().Utf8Value(), info[1].ToString().Utf8Value(),
                                                      info[2].ToString().Utf8Value()));
}

}  // namespace

void InitNativeNet(Napi::Env env, Napi::Object exports) {
  exports.Set("nativeAttach", Napi::Function::New(env, Attach, "nativeAttach"));
  exports.Set("nativeDetach", Napi::Function::New(env, Detach, "nativeDetach"));
  exports.Set("nativeAddPorts", Napi::Function::New(env, AddPorts, "nativeAddPorts"));
  exports.Set("nativeOwners", Napi::Function::New(env, Owners, "nativeOwners"));
  exports.Set("nativeCheck", Napi::Function::New(env, ByOwner<nn::Check>, "nativeCheck"));
  exports.Set("nativeEnsureNetwork", Napi::Function::New(env, ByNetwork<nn::EnsureNetwork>, "nativeEnsureNetwork"));
  exports.Set("nativeRemoveNetwork", Napi::Function::New(env, ByNetwork<nn::RemoveNetwork>, "nativeRemoveNetwork"));
  exports.Set("nativeAttachments", Napi::Function::New(env, Attachments, "nativeAttachments"));
  exports.Set("nativeGc", Napi::Function::New(env, Gc, "nativeGc"));
  exports.Set("nativeStatus", Napi::Function::New(env, Status, "nativeStatus"));
  exports.Set("nativeHostIfname", Napi::Function::New(env, HostIfname, "nativeHostIfname"));
}

}  // namespace podnet
