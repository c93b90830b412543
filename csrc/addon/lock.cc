// lockFile for the runtime's state directory (core/lock.h): the blocking wait
// runs on a libuv pool thread; the lock lives as long as the returned fd.
#include "../core/lock.h"

#include "common.h"

namespace podnet {
namespace {

// lockFile(path): Promise<fd>, an exclusive lock on `path` (created if missing).
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  auto path = info[0].As<Napi::String>().Utf8Value();
  auto fd = std::make_shared<Fd>();  // closes (unlocks) if never handed to JS
  return RunAsync(
      info.Env(),
      [=] {
        const char* step = "";
        int f = LockFileExclusive(path.c_str(), &step);
        if (f < 0) throw ErrnoError(-f, step, path);
        *fd = Fd(f);
      },
      [=](Napi::Env env) { return Napi::Number::New(env, fd->release()); });
}

}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
}

}  // namespace podnet
