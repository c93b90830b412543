// Shared plumbing for the addon: typed errors that cross into JS and
// promise-based async work off the main thread. Code that changes namespace
// runs on the namespace thread (nsthread.h), never here.
#pragma once

#include <napi.h>
#include <sys/stat.h>

#include <cerrno>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace podnet {

// An error raised by native code; becomes a JS Error with code/errno/syscall/path.
struct NativeError {
  std::string code;     // errno name ("EEXIST") or podnet's own ("ERR_NOT_NETNS")
  std::string message;  // what failed, naming the thing
  std::string syscall;  // empty when not a syscall failure
  std::string path;     // empty when no path is involved
  int err = 0;          // errno, 0 when not a syscall failure
};

// Builds a NativeError from errno (or an explicit error number).
NativeError ErrnoError(int err, const std::string& syscall, const std::string& path = "");
[[noreturn]] void ThrowErrno(const std::string& syscall, const std::string& path = "");
[[noreturn]] void ThrowCode(const std::string& code, const std::string& message,
                            const std::string& path = "");

// errno name ("ENOENT"), or "E<number>" when glibc has none.
std::string ErrnoName(int err);

Napi::Error ToJsError(Napi::Env env, const NativeError& e);

// What a failed job threw, as a NativeError (ERR_NATIVE for other exceptions).
NativeError ToNativeError(std::exception_ptr failure);

// On the main thread: rejects `deferred` with `failure`, else resolves it with
// toJs(env). False when the environment can no longer run JavaScript (an
// exiting worker thread): then nothing is settled.
bool Settle(Napi::Env env, Napi::Promise::Deferred& deferred, std::exception_ptr failure,
            const std::function<Napi::Value(Napi::Env)>& toJs);

// Runs `work` on a libuv pool thread and settles a promise: resolved with
// `toJs(env)` or rejected with the NativeError `work` threw. `work` must not
// change the calling thread's namespaces: that is the namespace thread's job.
Napi::Value RunAsync(Napi::Env env, std::function<void()> work,
                     std::function<Napi::Value(Napi::Env)> toJs);

// Owns a file descriptor; closes it on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Opens `path` and checks it is a network namespace (ERR_NOT_NETNS if not);
// `st` gets its identity (nsfs device and inode).
Fd OpenNetns(const std::string& path, struct stat* st);

// Sets `lo` up in the calling thread's network namespace: 0, or -1 with errno.
// Async-signal-safe (socket and ioctl only), so a forked child may call it.
int SetLoopbackUp();

// Each feature registers its functions on the addon's exports.
void InitNetns(Napi::Env env, Napi::Object exports);
void InitStats(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitLock(Napi::Env env, Napi::Object exports);

}  // namespace podnet
