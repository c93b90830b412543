// PidfdWatch: a helper process's pidfd watched on the event loop, for instant
// exit detection without SIGCHLD (which Node's own child_process owns).
#include <sys/wait.h>
#include <uv.h>

#include "common.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace podnet {
namespace {

#ifdef PODNET_FAULT_INJECTION
// Test builds only (test/system/pidfd-watch-fault.test.ts builds one): libuv's
// uv_poll_start fails only for an fd another handle of the loop watches, which
// uv_poll_init refuses first, so its failure path is reached by injection.
int g_pollStartFault = 0;

int PollStart(uv_poll_t* poll, int events, uv_poll_cb cb) {
  if (int fault = g_pollStartFault) {
    g_pollStartFault = 0;
    return fault;
  }
  return uv_poll_start(poll, events, cb);
}
#else
inline int PollStart(uv_poll_t* poll, int events, uv_poll_cb cb) { return uv_poll_start(poll, events, cb); }
#endif

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
    rc = PollStart(&handle_->poll, UV_READABLE, OnReadable);
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

}  // namespace

void InitPidfdWatch(Napi::Env env, Napi::Object exports) {
  PidfdWatch::Init(env, exports);
#ifdef PODNET_FAULT_INJECTION
  // failNextPollStart(errno): the next PidfdWatch's uv_poll_start returns -errno.
  exports.Set("failNextPollStart", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                g_pollStartFault = -info[0].ToNumber().Int32Value();
                return info.Env().Undefined();
              }));
#endif
}

}  // namespace podnet
