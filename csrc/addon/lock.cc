// Advisory file locks (flock) for the runtime's state directory, so several
// processes sharing a state dir serialize their changes. Blocking waits run
// on a libuv pool thread; the lock lives as long as the returned fd.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

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
        Fd f(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!f) ThrowErrno("open", path);
        while (flock(f.get(), LOCK_EX) != 0) {
          if (errno != EINTR) ThrowErrno("flock", path);
        }
        *fd = std::move(f);
      },
      [=](Napi::Env env) { return Napi::Number::New(env, fd->release()); });
}

}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
}

}  // namespace podnet
