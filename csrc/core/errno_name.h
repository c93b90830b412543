// The one errno namer: "ENOENT" for 2, "E<number>" when glibc has no name.
#pragma once

#include <string>

namespace podnet {

std::string ErrnoName(int err);

}  // namespace podnet
