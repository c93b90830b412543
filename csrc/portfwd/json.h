// A minimal JSON reader for the forwarder's configuration (objects, arrays,
// strings, numbers, booleans, null). The config is produced by podnet's own
// TypeScript side, so this favours size over completeness: \u escapes outside
// ASCII are refused.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pfwd {

struct Json {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::map<std::string, Json> obj;

  const Json* get(const std::string& k) const {
    auto it = obj.find(k);
    return kind == Obj && it != obj.end() ? &it->second : nullptr;
  }
  std::string getStr(const std::string& k) const {
    const Json* j = get(k);
    return j && j->kind == Str ? j->str : "";
  }
  long getInt(const std::string& k, long dflt = -1) const {
    const Json* j = get(k);
    return j && j->kind == Num ? static_cast<long>(j->num) : dflt;
  }
};

// Parses `text`; on failure returns false and sets `err`.
bool ParseJson(const std::string& text, Json* out, std::string* err);

}  // namespace pfwd
