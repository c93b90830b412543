#include "common.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <string.h>
#include <unistd.h>

#include <exception>
#include <thread>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

namespace podnet {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? std::string(name) : "E" + std::to_string(err);
}

NativeError ErrnoError(int err, const std::string& syscall, const std::string& path) {
  NativeError e;
  e.err = err;
  e.code = ErrnoName(err);
  e.syscall = syscall;
  e.path = path;
  e.message = e.code + ": " + strerror(err) + ", " + syscall + (path.empty() ? "" : " '" + path + "'");
  return e;
}

void ThrowErrno(const std::string& syscall, const std::string& path) {
  throw ErrnoError(errno, syscall, path);
}

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
  if (e.err) err.Set("errno", Napi::Number::New(env, e.err));
  if (!e.syscall.empty()) err.Set("syscall", e.syscall);
  if (!e.path.empty()) err.Set("path", e.path);
  return err;
}

namespace {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> toJs)
      : Napi::AsyncWorker(env, "podnet"), deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)), toJs_(std::move(toJs)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (const NativeError& e) {
      failed_ = true;
      error_ = e;
    } catch (const std::exception& e) {
      failed_ = true;
      error_.code = "ERR_NATIVE";
      error_.message = e.what();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failed_) {
      deferred_.Reject(ToJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(toJs_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> toJs_;
  NativeError error_;
  bool failed_ = false;
};

}  // namespace

Napi::Value RunAsync(Napi::Env env, std::function<void()> work,
                     std::function<Napi::Value(Napi::Env)> toJs) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(toJs));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

void OnOwnThread(const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  t.join();
  if (failure) std::rethrow_exception(failure);
}

void InNetns(int nsfd, const std::function<void()>& fn) {
  OnOwnThread([&] {
    if (setns(nsfd, CLONE_NEWNET) != 0) ThrowErrno("setns");
    fn();
  });
}

Fd OpenNetns(const std::string& path, struct stat* st) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) ThrowErrno("open", path);
  struct statfs sfs;
  if (fstatfs(fd.get(), &sfs) != 0) ThrowErrno("fstatfs", path);
  if (sfs.f_type != NSFS_MAGIC || ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
    ThrowCode("ERR_NOT_NETNS", "'" + path + "' is not a network namespace", path);
  }
  if (fstat(fd.get(), st) != 0) ThrowErrno("fstat", path);
  return fd;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

}  // namespace podnet
