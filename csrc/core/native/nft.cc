#include "nft.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>

#include <mutex>

namespace podnet {
namespace native {

namespace {

struct nft_ctx;

struct Lib {
  nft_ctx* (*ctx_new)(uint32_t);
  int (*buffer_output)(nft_ctx*);
  int (*buffer_error)(nft_ctx*);
  const char* (*get_output)(nft_ctx*);
  const char* (*get_error)(nft_ctx*);
  unsigned (*get_flags)(nft_ctx*);
  void (*set_flags)(nft_ctx*, unsigned);
  int (*run)(nft_ctx*, const char*);
  nft_ctx* ctx = nullptr;
  std::string loadError;
};

constexpr unsigned kOutputJson = 1u << 4;  // NFT_CTX_OUTPUT_JSON (libnftables.h)

std::mutex mu;
Lib* lib = nullptr;
bool tried = false;

template <typename T>
bool Sym(void* h, const char* name, T* out) {
  *out = reinterpret_cast<T>(dlsym(h, name));
  return *out != nullptr;
}

Lib* Load(std::string* err) {
  if (tried) {
    if (!lib) *err = "libnftables.so.1 is not available (install the Debian package libnftables1)";
    return lib;
  }
  tried = true;
  // PODNET_LIBNFTABLES names another file to load (tests use it to show a host without the library).
  const char* name = getenv("PODNET_LIBNFTABLES");
  void* h = dlopen(name && *name ? name : "libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *err = "libnftables.so.1 is not available (install the Debian package libnftables1)";
    return nullptr;
  }
  auto* l = new Lib();
  if (!Sym(h, "nft_ctx_new", &l->ctx_new) || !Sym(h, "nft_ctx_buffer_output", &l->buffer_output) ||
      !Sym(h, "nft_ctx_buffer_error", &l->buffer_error) || !Sym(h, "nft_ctx_get_output_buffer", &l->get_output) ||
      !Sym(h, "nft_ctx_get_error_buffer", &l->get_error) || !Sym(h, "nft_ctx_output_get_flags", &l->get_flags) ||
      !Sym(h, "nft_ctx_output_set_flags", &l->set_flags) || !Sym(h, "nft_run_cmd_from_buffer", &l->run) ||
      !(l->ctx = l->ctx_new(0))) {
    *err = "libnftables.so.1 lacks the nft_ctx API (install the Debian package libnftables1)";
    delete l;
    return nullptr;
  }
  l->buffer_output(l->ctx);
  l->buffer_error(l->ctx);
  lib = l;
  return lib;
}

}  // namespace

int NftRun(const std::string& commands, std::string* errText, std::string* output, bool json) {
  std::lock_guard<std::mutex> g(mu);
  std::string loadErr;
  Lib* l = Load(&loadErr);
  if (!l) {
    if (errText) *errText = loadErr;
    return -ENOPKG;
  }
  unsigned flags = l->get_flags(l->ctx);
  l->set_flags(l->ctx, json ? (flags | kOutputJson) : (flags & ~kOutputJson));
  int rc = l->run(l->ctx, commands.c_str());
  // Reading a buffer also resets it for the next command.
  std::string out = l->get_output(l->ctx);
  std::string err = l->get_error(l->ctx);
  if (output) *output = out;
  if (rc == 0) return 0;
  if (errText) *errText = err;
  if (err.find("File exists") != std::string::npos) return -EEXIST;
  if (err.find("No such file or directory") != std::string::npos) return -ENOENT;
  if (err.find("Operation not permitted") != std::string::npos) return -EPERM;
  if (err.find("Protocol not supported") != std::string::npos ||
      err.find("Operation not supported") != std::string::npos)
    return -EOPNOTSUPP;
  return -EINVAL;
}

}  // namespace native
}  // namespace podnet
