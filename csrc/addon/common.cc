#include "common.h"

#include <exception>

namespace podnet {

NativeError ErrnoError(int err, const std::string& syscall, const std::string& path) {
  NativeError e;
  e.err = err;
  e.code = ErrnoName(err);
  e.syscall = syscall;
  e.path = path;
  e.message = e.code + ": " + strerror(err) + ", " + syscall + (path.empty() ? "" : " '" + path + "'");
  return e;
}

void ThrowErrno(const std::string& syscall, const std::string& path) { throw ErrnoError(errno, syscall, path); }

void ThrowCode(const std::string& code, const std::string& message, const std::string& path) {
  NativeError e;
  e.code = code;
  e.message = message;
  e.path = path;
  throw e;
}

Napi::Error ToJsError(Napi::Env env, const NativeError& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", e.code);
  // Negative, as in Node's own SystemError (errno -2 with code 'ENOENT').
  if (e.err) err.Set("errno", Napi::Number::New(env, -e.err));
  if (!e.syscall.empty()) err.Set("syscall", e.syscall);
  if (!e.path.empty()) err.Set("path", e.path);
  return err;
}

NativeError ToNativeError(std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const NativeError& e) {
    return e;
  } catch (const std::exception& e) {
    NativeError n;
    n.code = "ERR_NATIVE";
    n.message = e.what();
    return n;
  }
}

// A worker that is exiting still completes work but can no longer run
// JavaScript: napi calls then fail, and a Napi::Error made at that point breaks
// the environment's teardown. So probe with the C API (no exceptions) first.
static bool CanRunJs(napi_env env) {
  napi_value o;
  return napi_create_object(env, &o) == napi_ok && napi_set_named_property(env, o, "probe", o) == napi_ok;
}

bool Settle(Napi::Env env, Napi::Promise::Deferred& deferred, std::exception_ptr failure,
            const std::function<Napi::Value(Napi::Env)>& toJs) {
  Napi::HandleScope scope(env);
  if (!CanRunJs(env)) return false;
  if (failure) {
    deferred.Reject(ToJsError(env, ToNativeError(failure)).Value());
    return true;
  }
  try {
    deferred.Resolve(toJs(env));
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
  }
  return true;
}

namespace {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> toJs)
      : Napi::AsyncWorker(env, "podnet"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        toJs_(std::move(toJs)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (...) {
      failure_ = std::current_exception();
    }
  }

  void OnOK() override { Settle(Env(), deferred_, failure_, toJs_); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> toJs_;
  std::exception_ptr failure_;
};

}  // namespace

Napi::Value RunAsync(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> toJs) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(toJs));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Fd OpenNetns(const std::string& path, struct stat* st) {
  int fd = OpenNetnsFd(path.c_str(), st);
  if (fd == -kNotNetns) ThrowCode("ERR_NOT_NETNS", "'" + path + "' is not a network namespace", path);
  if (fd < 0) throw ErrnoError(-fd, "open", path);
  return Fd(fd);
}

}  // namespace podnet
