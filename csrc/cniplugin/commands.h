// The CNI commands carried out on podnet's native network engine
// (csrc/core/native/engine.h), so containers attached by a CNI runtime and
// sandboxes made through podnet's API share networks, addresses and the
// firewall table.
#pragma once

#include "protocol.h"

namespace podnet {
namespace cni {

// ADD fills `result`; DEL, CHECK, GC and STATUS only succeed or fail.
bool Execute(const Request& req, Result* result, Error* err);

}  // namespace cni
}  // namespace podnet
