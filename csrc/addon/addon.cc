// podnet's native addon: each feature file registers its own functions.
#include "common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  podnet::InitNetns(env, exports);
  podnet::InitStats(env, exports);
  podnet::InitSpawn(env, exports);
  podnet::InitLock(env, exports);
  podnet::InitNativeNet(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(podnet, Init)
