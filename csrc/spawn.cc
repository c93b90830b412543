#include "common.h"

namespace podnet {

void InitSpawn(Napi::Env, Napi::Object) {}

}  // namespace podnet
