// The link statistics functions of the addon: JS arrays in, flat arrays out.
// The work is the cache's (stats_cache.h); this file only converts.
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "stats_cache.h"

namespace podnet {
namespace {

// statsRead([[path, ifname|null], ...]) -> Promise<[errors, counts, names, counters]>:
// errors[i] is an Error or undefined; counts[i] the number of links of entry i;
// names and counters (kNumLinkCounters per link) list the links of all entries in
// order (names only for entries without an interface name). Flat arrays keep the crossing into JS cheap for thousands
// of entries.
Napi::Value StatsRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "statsRead expects an array");
  Napi::Array in = info[0].As<Napi::Array>();
  auto reqs = std::make_shared<std::vector<StatsRequest>>(in.Length());
  for (uint32_t i = 0; i < in.Length(); i++) {
    Napi::Value v = in.Get(i);
    if (!v.IsArray()) throw Napi::TypeError::New(env, "statsRead entry must be [path, ifname]");
    Napi::Array e = v.As<Napi::Array>();
    Napi::Value p = e.Get(uint32_t(0)), n = e.Get(uint32_t(1));
    if (!p.IsString()) throw Napi::TypeError::New(env, "statsRead entry path must be a string");
    (*reqs)[i].path = p.As<Napi::String>().Utf8Value();
    if (n.IsString()) (*reqs)[i].ifname = n.As<Napi::String>().Utf8Value();
  }
  auto outs = std::make_shared<std::vector<StatsOutcome>>();
  return RunAsync(
      env, [=] { ReadStatsBatch(*reqs, *outs); },
      [=](Napi::Env env) -> Napi::Value {
        size_t total = 0;
        for (const StatsOutcome& o : *outs) total += o.links.size();
        Napi::Array errors = Napi::Array::New(env, outs->size());
        Napi::Int32Array counts = Napi::Int32Array::New(env, outs->size());
        Napi::Array names = Napi::Array::New(env, total);
        Napi::Float64Array counters = Napi::Float64Array::New(env, total * kNumLinkCounters);
        double* c = counters.Data();
        uint32_t k = 0;
        for (uint32_t i = 0; i < outs->size(); i++) {
          const StatsOutcome& o = (*outs)[i];
          if (o.failed) errors.Set(i, ToJsError(env, o.error).Value());
          counts[i] = static_cast<int32_t>(o.links.size());
          const bool named = (*reqs)[i].ifname.empty();  // JS knows the name of a single link
          for (const LinkCounters& l : o.links) {
            if (named) names.Set(k, Napi::String::New(env, l.name));
            for (size_t j = 0; j < kNumLinkCounters; j++) *c++ = static_cast<double>(l.counters[j]);
            k++;
          }
        }
        Napi::Array r = Napi::Array::New(env, 4);
        r.Set(uint32_t(0), errors);
        r.Set(uint32_t(1), counts);
        r.Set(uint32_t(2), names);
        r.Set(uint32_t(3), counters);
        return r;
      });
}

// statsRelease(path|null) -> Promise<number of sockets closed>; null releases all.
Napi::Value StatsRelease(const Napi::CallbackInfo& info) {
  bool all = info.Length() < 1 || !info[0].IsString();
  std::string path = all ? "" : info[0].As<Napi::String>().Utf8Value();
  auto closed = std::make_shared<size_t>(0);
  return RunAsync(
      info.Env(), [=] { *closed = ReleaseStatsSockets(all ? nullptr : &path); },
      [=](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(*closed)); });
}

// statsCacheInfo() -> {sockets, paths}; a snapshot for tests and diagnostics.
Napi::Value StatsCacheInfo(const Napi::CallbackInfo& info) {
  auto counts = std::make_shared<std::pair<size_t, size_t>>();
  return RunAsync(
      info.Env(), [=] { *counts = StatsCacheCounts(); },
      [=](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("sockets", static_cast<double>(counts->first));
        o.Set("paths", static_cast<double>(counts->second));
        return o;
      });
}

}  // namespace

void InitStats(Napi::Env env, Napi::Object exports) {
  exports.Set("statsRead", Napi::Function::New(env, StatsRead, "statsRead"));
  exports.Set("statsRelease", Napi::Function::New(env, StatsRelease, "statsRelease"));
  exports.Set("statsCacheInfo", Napi::Function::New(env, StatsCacheInfo, "statsCacheInfo"));
}

}  // namespace podnet
