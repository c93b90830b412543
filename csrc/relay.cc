#include "common.h"

namespace podnet {

void InitRelay(Napi::Env, Napi::Object) {}

}  // namespace podnet
