#include "json.h"

#include <cstdlib>

namespace pfwd {
namespace {

struct Parser {
  const std::string& s;
  size_t i = 0;
  std::string err;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
  }
  bool fail(const char* what) {
    if (err.empty()) err = std::string(what) + " at offset " + std::to_string(i);
    return false;
  }
  bool lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (s.compare(i, n, w) != 0) return fail("unexpected token");
    i += n;
    return true;
  }
  bool str(std::string* out) {
    if (s[i] != '"') return fail("expected string");
    for (i++; i < s.size(); i++) {
      char c = s[i];
      if (c == '"') {
        i++;
        return true;
      }
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (++i >= s.size()) break;
      switch (s[i]) {
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'u': {
          if (i + 4 >= s.size()) return fail("bad escape");
          long v = std::strtol(s.substr(i + 1, 4).c_str(), nullptr, 16);
          if (v <= 0 || v > 0x7f) return fail("unsupported \\u escape");
          out->push_back(static_cast<char>(v));
          i += 4;
          break;
        }
        default:
          out->push_back(s[i]);
      }
    }
    return fail("unterminated string");
  }
  bool value(Json* v, int depth) {
    if (depth > 32) return fail("nesting too deep");
    ws();
    if (i >= s.size()) return fail("unexpected end");
    char c = s[i];
    if (c == '{') {
      v->kind = Json::Obj;
      i++;
      ws();
      if (i < s.size() && s[i] == '}') {
        i++;
        return true;
      }
      for (;;) {
        ws();
        std::string k;
        if (i >= s.size() || !str(&k)) return fail("expected key");
        ws();
        if (i >= s.size() || s[i++] != ':') return fail("expected ':'");
        if (!value(&v->obj[k], depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          i++;
          continue;
        }
        if (i < s.size() && s[i] == '}') {
          i++;
          return true;
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v->kind = Json::Arr;
      i++;
      ws();
      if (i < s.size() && s[i] == ']') {
        i++;
        return true;
      }
      for (;;) {
        v->arr.emplace_back();
        if (!value(&v->arr.back(), depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          i++;
          continue;
        }
        if (i < s.size() && s[i] == ']') {
          i++;
          return true;
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v->kind = Json::Str;
      return str(&v->str);
    }
    if (c == 't') {
      v->kind = Json::Bool;
      v->b = true;
      return lit("true");
    }
    if (c == 'f') {
      v->kind = Json::Bool;
      return lit("false");
    }
    if (c == 'n') {
      v->kind = Json::Null;
      return lit("null");
    }
    char* end = nullptr;
    v->num = std::strtod(s.c_str() + i, &end);
    if (end == s.c_str() + i) return fail("unexpected character");
    v->kind = Json::Num;
    i = end - s.c_str();
    return true;
  }
};

}  // namespace

bool ParseJson(const std::string& text, Json* out, std::string* err) {
  Parser p{text};
  if (!p.value(out, 0)) {
    *err = p.err;
    return false;
  }
  p.ws();
  if (p.i != text.size()) {
    *err = "trailing data at offset " + std::to_string(p.i);
    return false;
  }
  return true;
}

}  // namespace pfwd
