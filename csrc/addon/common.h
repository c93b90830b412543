// Shared plumbing for the N-API adapters (the syscall work itself is in the
// N-API-free core, csrc/core/): typed errors that cross into JS and
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

#include "../core/errno_name.h"
#include "../core/fd.h"
#include "../core/netns.h"

namespace podnet {

// An error raised by native code; becomes a JS Error with code/errno/syscall/path,
// errno negative as in Node's SystemError.
struct NativeError {
  std::string code;     // errno name ("EEXIST") or podnet's own ("ERR_NOT_NETNS")
  std::string message;  // what failed, naming the thing
  std::string syscall;  // empty when not a syscall failure
  std::string path;     // empty when no path is involved
  int err = 0;          // errno (positive here), 0 when not a syscall failure
};

// Builds a NativeError from errno (or an explicit error number).
NativeError ErrnoError(int err, const std::string& syscall, const std::string& path = "");
[[noreturn]] void ThrowErrno(const std::string& syscall, const std::string& path = "");
[[noreturn]] void ThrowCode(const std::string& code, const std::string& message, const std::string& path = "");

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
Napi::Value RunAsync(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> toJs);

// Opens `path` and checks it is a network namespace (ERR_NOT_NETNS if not);
// `st` gets its identity (nsfs device and inode).
Fd OpenNetns(const std::string& path, struct stat* st);

// Each feature registers its functions on the addon's exports.
void InitNetns(Napi::Env env, Napi::Object exports);
void InitStats(Napi::Env env, Napi::Object exports);
void InitSpawn(Napi::Env env, Napi::Object exports);
void InitPidfdWatch(Napi::Env env, Napi::Object exports);
void InitLock(Napi::Env env, Napi::Object exports);
void InitNativeNet(Napi::Env env, Napi::Object exports);

}  // namespace podnet
