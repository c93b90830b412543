#include "common.h"

namespace podnet {

void InitStats(Napi::Env, Napi::Object) {}

}  // namespace podnet
