// spawnHelper and the pidfd exit watch for helper processes (slirp4netns, the
// user-namespace holder, the port forwarder): the fork/exec itself is the
// core's SpawnProcess (core/spawn.h); this file converts its options and
// errors and watches the pidfd on the event loop for instant exit detection.
#include "../core/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <string>
#include <vector>

#include "common.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace podnet {
namespace {

std::vector<std::string> StringArray(const Napi::Value& v, const char* what) {
  std::vector<std::string> out;
  if (!v.IsArray()) ThrowCode("ERR_INVALID_ARGUMENT", std::string(what) + ": expected an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) ThrowCode("ERR_INVALID_ARGUMENT", std::string(what) + ": expected an array of strings");
    std::string s = e.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) ThrowCode("ERR_INVALID_ARGUMENT", std::string(what) + ": contains NUL");
    out.push_back(std::move(s));
  }
  return out;
}

int IntOpt(const Napi::Object& o, const char* key, int dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  if (!v.IsNumber()) ThrowCode("ERR_INVALID_ARGUMENT", std::string(key) + ": expected a number");
  return v.As<Napi::Number>().Int32Value();
}

bool BoolOpt(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : v.ToBoolean().Value();
}

SpawnPlan ParsePlan(const Napi::Object& o, Fd& devnull) {
  SpawnPlan p;
  Napi::Value file = o.Get("file");
  if (!file.IsString()) ThrowCode("ERR_INVALID_ARGUMENT", "file: expected a path");
  p.file = file.As<Napi::String>().Utf8Value();
  p.argv_store = StringArray(o.Get("argv"), "argv");
  if (!o.Get("env").IsUndefined()) {
    p.inherit_env = false;
    p.env_store = StringArray(o.Get("env"), "env");
  }

  // stdio: a given fd, else /dev/null.
  const char* stdioKeys[] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; i++) {
    int fd = IntOpt(o, stdioKeys[i], -1);
    if (fd < 0) {
      if (!devnull) devnull = Fd(open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!devnull) ThrowErrno("open", "/dev/null");
      fd = devnull.get();
    }
    p.src.push_back(fd);
    p.dst.push_back(i);
  }
  // fds: [[childFd, parentFd], ...], child fds >= 3.
  Napi::Value fds = o.Get("fds");
  if (!fds.IsUndefined()) {
    if (!fds.IsArray()) ThrowCode("ERR_INVALID_ARGUMENT", "fds: expected [childFd, parentFd] pairs");
    Napi::Array a = fds.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsArray() || e.As<Napi::Array>().Length() != 2) {
        ThrowCode("ERR_INVALID_ARGUMENT", "fds: expected [childFd, parentFd] pairs");
      }
      int child = e.As<Napi::Array>().Get(0u).ToNumber().Int32Value();
      int parent = e.As<Napi::Array>().Get(1u).ToNumber().Int32Value();
      if (child < 3 || child > 1023 || parent < 0 || fcntl(parent, F_GETFD) < 0) {
        ThrowCode("ERR_INVALID_ARGUMENT",
                  "fds: invalid pair [" + std::to_string(child) + ", " + std::to_string(parent) + "]");
      }
      for (int d : p.dst) {
        if (d == child) ThrowCode("ERR_INVALID_ARGUMENT", "fds: a child fd is given twice");
      }
      p.src.push_back(parent);
      p.dst.push_back(child);
    }
  }
  p.userns = IntOpt(o, "userns", -1);
  p.netns = IntOpt(o, "netns", -1);
  p.unshare_flags = IntOpt(o, "unshare", 0);
  p.mount_private = BoolOpt(o, "mountPrivate", false);
  p.loopback_up = BoolOpt(o, "loopbackUp", false);
  p.setpgid = BoolOpt(o, "setpgid", true);
  Napi::Value cwd = o.Get("cwd");
  if (cwd.IsString()) p.cwd = cwd.As<Napi::String>().Utf8Value();
  return p;
}

// spawnHelper(opts) -> {pid, pidfd}; throws the child's errno and failed step.
Napi::Value SpawnHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!info[0].IsObject()) ThrowCode("ERR_INVALID_ARGUMENT", "spawnHelper: expected an options object");
    Fd devnull;
    SpawnPlan plan = ParsePlan(info[0].As<Napi::Object>(), devnull);
    const char* step = "";
    pid_t pid = SpawnProcess(plan, &step);
    if (pid < 0) throw ErrnoError(-pid, step, plan.file);
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // close-on-exec by default
    if (pidfd < 0) {
      int err = errno;
      kill(pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      throw ErrnoError(err, "pidfd_open", plan.file);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("pid", Napi::Number::New(env, pid));
    out.Set("pidfd", Napi::Number::New(env, pidfd));
    return out;
  } catch (const NativeError& e) {
    throw ToJsError(env, e);
  }
}

// Watches a pidfd on the event loop; when the process exits it is reaped
// (waitid on the pidfd) and the callback gets (code, signal). One shot. The
// watch ends with its environment (a worker thread that exits): its handle is
// closed by an async cleanup hook (napi_add_async_cleanup_hook), which holds
// the environment's teardown until libuv has run the close callback, so the
// loop closes with nothing of ours in it and the callback runs before the
// addon can be unloaded.
class PidfdWatch : public Napi::ObjectWrap<PidfdWatch> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "PidfdWatch",
                                   {
                                       InstanceMethod("close", &PidfdWatch::Close),
                                       InstanceMethod("ref", &PidfdWatch::Ref),
                                       InstanceMethod("unref", &PidfdWatch::Unref),
                                   });
    exports.Set("PidfdWatch", f);
  }

  // new PidfdWatch(pidfd, cb)
  explicit PidfdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PidfdWatch>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      throw ToJsError(env, NativeError{"ERR_INVALID_ARGUMENT", "PidfdWatch(pidfd, callback)", "", "", 0});
    }
    pidfd_ = info[0].As<Napi::Number>().Int32Value();
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    auto* handle = new Handle;
    int rc = uv_poll_init(loop, &handle->poll, pidfd_);
    if (rc != 0) {
      delete handle;  // never registered with the loop
      throw ToJsError(env, ErrnoError(-rc, "uv_poll_init"));
    }
    handle_ = handle;
    handle_->poll.data = this;
    rc = uv_poll_start(&handle_->poll, UV_READABLE, OnReadable);
    if (rc != 0) {
      CloseHandle(nullptr);  // registered: only uv_close may free it
      throw ToJsError(env, ErrnoError(-rc, "uv_poll_start"));
    }
    cb_ = Napi::Persistent(info[1].As<Napi::Function>());
    self_ = Napi::Persistent(info.This().As<Napi::Object>());  // alive while watching
    if (napi_add_async_cleanup_hook(env, OnEnvCleanup, this, &hook_) != napi_ok) hook_ = nullptr;
  }

 private:
  struct Handle {
    uv_poll_t poll;
    napi_async_cleanup_hook_handle teardown = nullptr;  // released once closed
  };

  static void OnReadable(uv_poll_t* h, int, int) {
    auto* self = static_cast<PidfdWatch*>(h->data);
    siginfo_t si{};
    if (waitid(static_cast<idtype_t>(P_PIDFD), self->pidfd_, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0) {
      return;  // spurious wake-up: still running
    }
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Value code = env.Null(), sig = env.Null();
    if (si.si_pid != 0) {
      if (si.si_code == CLD_EXITED)
        code = Napi::Number::New(env, si.si_status);
      else
        sig = Napi::Number::New(env, si.si_status);
    }
    Napi::FunctionReference cb = std::move(self->cb_);
    self->Stop();
    if (cb.IsEmpty()) return;
    try {
      cb.MakeCallback(env.Global(), {code, sig});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());  // as an uncaught exception would
    }
  }

  // The environment is going away: close the handle; its teardown goes on
  // once the close callback has released `teardown`.
  static void OnEnvCleanup(napi_async_cleanup_hook_handle teardown, void* arg) {
    auto* self = static_cast<PidfdWatch*>(arg);
    self->hook_ = nullptr;
    if (self->handle_) {
      self->CloseHandle(teardown);
    } else {
      napi_remove_async_cleanup_hook(teardown);
    }
    self->cb_.Reset();
    if (!self->self_.IsEmpty()) self->self_.Reset();
  }

  void CloseHandle(napi_async_cleanup_hook_handle teardown) {
    if (!handle_) return;
    handle_->teardown = teardown;
    uv_poll_stop(&handle_->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), [](uv_handle_t* h) {
      auto* handle = reinterpret_cast<Handle*>(h);  // poll is its first member
      napi_async_cleanup_hook_handle teardown = handle->teardown;
      delete handle;
      if (teardown) napi_remove_async_cleanup_hook(teardown);
    });
    handle_ = nullptr;
  }

  // Ends the watch; `this` may be freed once self_ is reset.
  void Stop() {
    CloseHandle(nullptr);
    if (hook_) {
      napi_remove_async_cleanup_hook(hook_);
      hook_ = nullptr;
    }
    cb_.Reset();
    if (!self_.IsEmpty()) self_.Reset();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (handle_) uv_ref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (handle_) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->poll));
    return info.Env().Undefined();
  }

  int pidfd_ = -1;
  Handle* handle_ = nullptr;
  napi_async_cleanup_hook_handle hook_ = nullptr;
  Napi::FunctionReference cb_;
  Napi::ObjectReference self_;
};

// pipe() -> [readFd, writeFd], both close-on-exec.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw ToJsError(info.Env(), ErrnoError(errno, "pipe2"));
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, fds[0]);
  a.Set(1u, fds[1]);
  return a;
}

// memfd(name) -> fd: an anonymous file for a helper's log output.
Napi::Value Memfd(const Napi::CallbackInfo& info) {
  std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "podnet";
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) throw ToJsError(info.Env(), ErrnoError(errno, "memfd_create", name));
  return Napi::Number::New(info.Env(), fd);
}

// mkfifo(path, mode): a named pipe, e.g. for a helper that only reports readiness by writing a pid file.
Napi::Value Mkfifo(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = static_cast<mode_t>(info[1].ToNumber().Uint32Value());
  if (mkfifo(path.c_str(), mode) != 0) throw ToJsError(info.Env(), ErrnoError(errno, "mkfifo", path));
  return info.Env().Undefined();
}

// pidfdSignal(pidfd, signo): signals exactly the process the pidfd names (no pid reuse race).
Napi::Value PidfdSignal(const Napi::CallbackInfo& info) {
  int pidfd = info[0].ToNumber().Int32Value();
  int sig = info[1].ToNumber().Int32Value();
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0 && errno != ESRCH) {
    throw ToJsError(info.Env(), ErrnoError(errno, "pidfd_send_signal"));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnHelper", Napi::Function::New(env, SpawnHelper, "spawnHelper"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("memfd", Napi::Function::New(env, Memfd, "memfd"));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo, "mkfifo"));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal, "pidfdSignal"));
  PidfdWatch::Init(env, exports);
}

}  // namespace podnet
