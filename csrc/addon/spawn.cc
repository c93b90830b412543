// spawnHelper for helper processes (slirp4netns, the user-namespace holder,
// the port forwarder): the fork/exec itself is the core's SpawnProcess
// (core/spawn.h); this file converts its options and errors. Their pidfds are
// watched by PidfdWatch (pidfd_watch.cc).
#include "../core/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common.h"

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
  InitPidfdWatch(env, exports);
}

}  // namespace podnet
