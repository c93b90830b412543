// Generic helper spawn: fork/exec with explicit fd placement, namespace set-up
// before exec, and a pidfd for instant exit detection. Used for slirp4netns,
// the user-namespace holder, the port forwarder and any other helper process.
//
// Everything the child needs (argv, envp, fd tables, flags) is prepared before
// fork(); between fork and exec the child only makes raw syscalls, so it is safe
// in a multithreaded process (no malloc, no locks, no C++). Exec failures come
// back through a close-on-exec pipe (as libuv does), so spawnHelper() either
// returns a running, exec'd child or throws the child's errno with the step
// that failed.
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char** environ;

namespace podnet {
namespace {

// Steps the child can fail at, reported to the parent with errno.
enum Step : int { kSigReset, kSetpgid, kSetnsUser, kSetnsNet, kUnshare, kMountPrivate, kLoopbackUp, kDup, kChdir, kExec };
const char* const kStepNames[] = {"sigaction", "setpgid", "setns(CLONE_NEWUSER)", "setns(CLONE_NEWNET)",
                                  "unshare", "mount(/, MS_REC|MS_PRIVATE)", "set lo up", "dup2", "chdir", "execve"};

struct SpawnPlan {
  std::string file;
  std::vector<std::string> argvStore, envStore;
  std::vector<char*> argv, envp;  // null-terminated views of the stores
  bool inheritEnv = true;
  std::vector<int> src, dst;       // place parent fd src[i] at child fd dst[i]
  std::vector<int> keep;           // sorted child fds that stay open across exec
  int userns = -1, netns = -1;     // setns targets (user first)
  int unshareFlags = 0;            // e.g. CLONE_NEWUSER|CLONE_NEWNET for a holder
  bool mountPrivate = false;       // unshare(CLONE_NEWNS) + make / rprivate
  bool loopbackUp = false;         // set lo up in the child's network namespace
  bool setpgid = true;
  std::string cwd;
  int maxFd = 1024;                // fallback bound when close_range is missing
};

[[noreturn]] void ChildFail(int errfd, Step step) {
  int msg[2] = {step, errno};
  ssize_t n;
  do n = write(errfd, msg, sizeof msg); while (n < 0 && errno == EINTR);
  _exit(127);
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void ChildMain(const SpawnPlan& p, int errfd, int* tmp) {
  // Node ignores SIGPIPE and the parent blocked all signals around fork: exec with defaults.
  struct sigaction dfl;
  for (size_t i = 0; i < sizeof dfl; i++) reinterpret_cast<char*>(&dfl)[i] = 0;
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) {
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, nullptr);  // EINVAL for NPTL's own: fine
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ChildFail(errfd, kSigReset);

  if (p.setpgid && setpgid(0, 0) != 0) ChildFail(errfd, kSetpgid);
  // User namespace first: it grants the capabilities the other steps need.
  if (p.userns >= 0 && setns(p.userns, CLONE_NEWUSER) != 0) ChildFail(errfd, kSetnsUser);
  if (p.netns >= 0 && setns(p.netns, CLONE_NEWNET) != 0) ChildFail(errfd, kSetnsNet);
  int flags = p.unshareFlags | (p.mountPrivate ? CLONE_NEWNS : 0);
  if (flags && unshare(flags) != 0) ChildFail(errfd, kUnshare);
  // A private copy of a shared mount still propagates unmounts to its peers:
  // make the whole tree private so nothing done here reaches the host's mounts.
  if (p.mountPrivate && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    ChildFail(errfd, kMountPrivate);
  }
  // Here, not by a process run later: the child has every capability in a
  // user namespace it just made, which is what an unprivileged caller lacks.
  if (p.loopbackUp) {
    int rc = SetLoopbackUp();
    if (rc < 0) {
      errno = -rc;
      ChildFail(errfd, kLoopbackUp);
    }
  }

  // Move every source above the highest target first, so no dup2 clobbers a
  // source that is still to be placed; then place them (dup2 clears CLOEXEC).
  int base = p.keep.empty() ? 3 : p.keep.back() + 1;
  if (errfd < base) {
    errfd = fcntl(errfd, F_DUPFD_CLOEXEC, base);
    if (errfd < 0) _exit(127);
  }
  for (size_t i = 0; i < p.src.size(); i++) {
    tmp[i] = fcntl(p.src[i], F_DUPFD_CLOEXEC, base);
    if (tmp[i] < 0) ChildFail(errfd, kDup);
  }
  for (size_t i = 0; i < p.src.size(); i++) {
    if (dup2(tmp[i], p.dst[i]) < 0) ChildFail(errfd, kDup);
  }
  // Everything but the placed fds is close-on-exec (the temporaries already are).
  unsigned lo = 0;
  for (int k : p.keep) {
    if (static_cast<unsigned>(k) > lo && syscall(SYS_close_range, lo, k - 1, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = lo; fd < k; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    lo = k + 1;
  }
  if (syscall(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = lo; fd < p.maxFd; fd++) {
      if (fd != errfd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  if (!p.cwd.empty() && chdir(p.cwd.c_str()) != 0) ChildFail(errfd, kChdir);
  execve(p.file.c_str(), p.argv.data(), p.inheritEnv ? environ : p.envp.data());
  ChildFail(errfd, kExec);
}

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
  p.argvStore = StringArray(o.Get("argv"), "argv");
  if (p.argvStore.empty()) p.argvStore.push_back(p.file);
  if (!o.Get("env").IsUndefined()) {
    p.inheritEnv = false;
    p.envStore = StringArray(o.Get("env"), "env");
  }
  for (auto& s : p.argvStore) p.argv.push_back(&s[0]);
  p.argv.push_back(nullptr);
  for (auto& s : p.envStore) p.envp.push_back(&s[0]);
  p.envp.push_back(nullptr);

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
        ThrowCode("ERR_INVALID_ARGUMENT", "fds: invalid pair [" + std::to_string(child) + ", " + std::to_string(parent) + "]");
      }
      p.src.push_back(parent);
      p.dst.push_back(child);
    }
  }
  p.keep = p.dst;
  std::sort(p.keep.begin(), p.keep.end());
  if (std::adjacent_find(p.keep.begin(), p.keep.end()) != p.keep.end()) {
    ThrowCode("ERR_INVALID_ARGUMENT", "fds: a child fd is given twice");
  }
  p.userns = IntOpt(o, "userns", -1);
  p.netns = IntOpt(o, "netns", -1);
  p.unshareFlags = IntOpt(o, "unshare", 0);
  p.mountPrivate = BoolOpt(o, "mountPrivate", false);
  p.loopbackUp = BoolOpt(o, "loopbackUp", false);
  p.setpgid = BoolOpt(o, "setpgid", true);
  Napi::Value cwd = o.Get("cwd");
  if (cwd.IsString()) p.cwd = cwd.As<Napi::String>().Utf8Value();
  long maxFd = sysconf(_SC_OPEN_MAX);
  if (maxFd > 0) p.maxFd = static_cast<int>(std::min(maxFd, 65536L));
  return p;
}

// spawnHelper(opts) -> {pid, pidfd}; throws the child's errno and failed step.
Napi::Value SpawnHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (!info[0].IsObject()) ThrowCode("ERR_INVALID_ARGUMENT", "spawnHelper: expected an options object");
    Fd devnull;
    SpawnPlan plan = ParsePlan(info[0].As<Napi::Object>(), devnull);
    std::vector<int> tmp(plan.src.size());
    int errPipe[2];
    if (pipe2(errPipe, O_CLOEXEC) != 0) ThrowErrno("pipe2");
    Fd errR(errPipe[0]), errW(errPipe[1]);

    // Block signals across fork (as libuv does): a handler of this process
    // must not run in the child before its dispositions are reset.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) ChildMain(plan, errW.get(), tmp.data());
    int forkErr = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) throw ErrnoError(forkErr, "fork", plan.file);
    errW = Fd();

    int msg[2];
    size_t got = 0;
    while (got < sizeof msg) {
      ssize_t n = read(errR.get(), reinterpret_cast<char*>(msg) + got, sizeof msg - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += n;
    }
    if (got == sizeof msg) {  // the child failed before exec and exits 127
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
      int step = msg[0] >= 0 && msg[0] <= kExec ? msg[0] : kExec;
      throw ErrnoError(msg[1], kStepNames[step], plan.file);
    }
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // close-on-exec by default
    if (pidfd < 0) {
      int err = errno;
      kill(pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
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
// (waitid on the pidfd) and the callback gets (code, signal). One shot.
class ExitWatch : public Napi::ObjectWrap<ExitWatch> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(env, "ExitWatch", {
      InstanceMethod("close", &ExitWatch::Close),
      InstanceMethod("ref", &ExitWatch::Ref),
      InstanceMethod("unref", &ExitWatch::Unref),
    });
    exports.Set("ExitWatch", f);
  }

  // new ExitWatch(pidfd, cb)
  explicit ExitWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ExitWatch>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsFunction()) {
      throw ToJsError(env, NativeError{"ERR_INVALID_ARGUMENT", "ExitWatch(pidfd, callback)", "", "", 0});
    }
    pidfd_ = info[0].As<Napi::Number>().Int32Value();
    cb_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, pidfd_);
    if (rc == 0) {
      poll_->data = this;
      rc = uv_poll_start(poll_, UV_READABLE, OnReadable);
    }
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      throw ToJsError(env, ErrnoError(-rc, "uv_poll_start"));
    }
    self_ = Napi::Persistent(info.This().As<Napi::Object>());  // alive while watching
  }

 private:
  static void OnReadable(uv_poll_t* h, int, int) {
    auto* self = static_cast<ExitWatch*>(h->data);
    siginfo_t si{};
    if (waitid(static_cast<idtype_t>(P_PIDFD), self->pidfd_, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0) {
      return;  // spurious wake-up: still running
    }
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Value code = env.Null(), sig = env.Null();
    if (si.si_pid != 0) {
      if (si.si_code == CLD_EXITED) code = Napi::Number::New(env, si.si_status);
      else sig = Napi::Number::New(env, si.si_status);
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

  void Stop() {
    if (poll_) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    cb_.Reset();
    if (!self_.IsEmpty()) self_.Reset();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (poll_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  int pidfd_ = -1;
  uv_poll_t* poll_ = nullptr;
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
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal, "pidfdSignal"));
  ExitWatch::Init(env, exports);
}

}  // namespace podnet
