#include "errno_name.h"

#include <string.h>

namespace podnet {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

}  // namespace podnet
