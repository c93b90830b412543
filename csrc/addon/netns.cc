// Persistent network namespaces, interoperable with iproute2's `ip netns`:
// a namespace is kept alive by bind-mounting its nsfs file onto a file under
// the run directory (default /run/netns), which itself is a shared mount point.
// Create, remove and the work inside a namespace run on the namespace thread
// (nsthread.h): one hand-off each way and no pool thread to wake, which is
// most of a create+remove's overhead over the bare syscalls. None of its jobs
// opens a caller's file for I/O (only O_PATH, O_CREAT|O_EXCL, mount calls), so
// a FIFO or a device cannot block it; opening a namespace by path needs no
// namespace change and runs on a libuv pool thread.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <set>

#include "common.h"
#include "nsthread.h"

namespace podnet {
namespace {

// An opened namespace; the fd closes with it unless handed to JS, so a result
// that never reaches JS (its environment gone) leaks nothing.
struct NsInfo {
  Fd fd;
  double dev = 0;
  double ino = 0;
};

// Names are checked in JS first; this is the last line before a syscall.
void CheckName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    ThrowCode("ERR_INVALID_ARGUMENT", "invalid namespace name '" + name + "'");
  }
}

// Makes `dir` a shared mount point as iproute2 does, once per process.
void EnsureRunDir(const std::string& dir) {
  static std::mutex mu;
  static std::set<std::string> ready;
  std::lock_guard<std::mutex> guard(mu);
  if (ready.count(dir)) return;
  const char* step = "";
  if (int rc = MakeSharedRunDir(dir.c_str(), &step); rc < 0) throw ErrnoError(-rc, step, dir);
  ready.insert(dir);
}

// Opens `path`, a network namespace, with its identity.
NsInfo OpenNs(const std::string& path) {
  struct stat st;
  Fd fd = OpenNetns(path, &st);
  NsInfo info;
  info.dev = static_cast<double>(st.st_dev);
  info.ino = static_cast<double>(st.st_ino);
  info.fd = std::move(fd);
  return info;
}

void RemoveNs(const std::string& path) {
  const char* step = "";
  int rc = RemoveNetnsMount(path.c_str(), &step);
  if (rc == -kNotNetns) {
    ThrowCode("ERR_NOT_NETNS", "'" + path + "' is not a network namespace mount or mount point", path);
  }
  if (rc < 0) throw ErrnoError(-rc, step, path);
}

// Creates `dir/name` exclusively (never mounting over an existing file), and
// has `bind` mount a namespace onto it and return that namespace, opened.
// Undone on failure.
NsInfo MountNsAt(const std::string& dir, const std::string& name,
                 const std::function<NsInfo(const std::string&)>& bind) {
  CheckName(name);
  EnsureRunDir(dir);
  const std::string path = dir + "/" + name;
  if (int rc = CreateMountPoint(path.c_str()); rc < 0) throw ErrnoError(-rc, "open", path);
  try {
    return bind(path);
  } catch (...) {
    UndoMountPoint(path.c_str());
    throw;
  }
}

// The namespace behind an fd known to be one (from /proc, or OpenNetns).
NsInfo Identify(Fd fd, const std::string& what) {
  struct stat st;
  if (fstat(fd.get(), &st) != 0) ThrowErrno("fstat", what);
  NsInfo info;
  info.dev = static_cast<double>(st.st_dev);
  info.ino = static_cast<double>(st.st_ino);
  info.fd = std::move(fd);
  return info;
}

Napi::Value InfoToJs(Napi::Env env, NsInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", info.fd.release());
  o.Set("dev", info.dev);
  o.Set("ino", info.ino);
  return o;
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

// netnsCreate(dir, name): a new namespace, made by the namespace thread, which
// unshares, binds its new namespace and goes back to its own.
Napi::Value Create(const Napi::CallbackInfo& info) {
  auto dir = StringArg(info, 0), name = StringArg(info, 1);
  auto out = std::make_shared<NsInfo>();
  return RunOnNsThread(
      info.Env(),
      [=] {
        *out = MountNsAt(dir, name, [](const std::string& path) {
          UnshareNetns();
          const char* self = "/proc/thread-self/ns/net";
          Fd fd(open(self, O_RDONLY | O_CLOEXEC));
          if (!fd) ThrowErrno("open", self);
          if (mount(self, path.c_str(), "none", MS_BIND, nullptr) != 0) ThrowErrno("mount", path);
          return Identify(std::move(fd), path);
        });
      },
      [=](Napi::Env env) { return InfoToJs(env, *out); }, [=] { RemoveNs(dir + "/" + name); });
}

// netnsFromPid(pid, dir, name): pins the process's namespace by fd first, so a
// PID reused meanwhile cannot swap it.
Napi::Value FromPid(const Napi::CallbackInfo& info) {
  int pid = info[0].As<Napi::Number>().Int32Value();
  auto dir = StringArg(info, 1), name = StringArg(info, 2);
  auto out = std::make_shared<NsInfo>();
  return RunOnNsThread(
      info.Env(),
      [=] {
        NsInfo src = OpenNs("/proc/" + std::to_string(pid) + "/ns/net");
        const std::string source = "/proc/self/fd/" + std::to_string(src.fd.get());
        *out = MountNsAt(dir, name, [&](const std::string& path) {
          if (mount(source.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) ThrowErrno("mount", path);
          return std::move(src);
        });
      },
      [=](Napi::Env env) { return InfoToJs(env, *out); }, [=] { RemoveNs(dir + "/" + name); });
}

// netnsUnshare(): a new namespace with `lo` up, held only by the returned fd
// (no bind mount): it goes when the fd closes, however the process ends. A
// warm namespace for a pool, made in one job of the namespace thread.
Napi::Value Unshare(const Napi::CallbackInfo& info) {
  auto out = std::make_shared<NsInfo>();
  return RunOnNsThread(
      info.Env(),
      [=] {
        UnshareNetns();
        if (int rc = SetLoopbackUp(); rc < 0) throw ErrnoError(-rc, "ioctl(SIOCSIFFLAGS)", "lo");
        const char* self = "/proc/thread-self/ns/net";
        Fd fd(open(self, O_RDONLY | O_CLOEXEC));
        if (!fd) ThrowErrno("open", self);
        *out = Identify(std::move(fd), self);
      },
      [=](Napi::Env env) { return InfoToJs(env, *out); });
}

// netnsBind(fd, dir, name): bind-mounts the namespace `fd` holds at a new
// `dir/name` (O_EXCL: never over an existing file); the fd stays the caller's.
// Synchronous, on the calling thread, which never changes namespace for it:
// an O_EXCL create and one mount(2) of an nsfs file (tens of microseconds, no
// I/O), the same class of work as the state files written synchronously
// (lib/atomic.ts). A hand-off to another thread and back would cost more
// than the work, and far more while that thread waits to be scheduled.
Napi::Value Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int nsfd = info[0].As<Napi::Number>().Int32Value();
  auto dir = StringArg(info, 1), name = StringArg(info, 2);
  try {
    CheckName(name);
    EnsureRunDir(dir);
    const std::string path = dir + "/" + name;
    const std::string source = "/proc/self/fd/" + std::to_string(nsfd);
    if (int rc = CreateMountPoint(path.c_str()); rc < 0) throw ErrnoError(-rc, "open", path);
    if (mount(source.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
      int saved = errno;
      UndoMountPoint(path.c_str());
      throw ErrnoError(saved, "mount", path);
    }
  } catch (const NativeError& e) {
    throw ToJsError(env, e);
  }
  return env.Undefined();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  auto path = StringArg(info, 0);
  auto out = std::make_shared<NsInfo>();
  return RunAsync(
      info.Env(), [=] { *out = OpenNs(path); }, [=](Napi::Env env) { return InfoToJs(env, *out); });
}

Napi::Value Remove(const Napi::CallbackInfo& info) {
  auto path = StringArg(info, 0);
  return RunOnNsThread(
      info.Env(), [=] { RemoveNs(path); }, [](Napi::Env env) { return env.Undefined(); });
}

// netnsLoopbackUp(fd): sets `lo` up inside the namespace, as container
// runtimes do (a new namespace's loopback starts down). The job gets its own
// duplicate of `fd`: JS may close its fd (and the number be reused) before the
// namespace thread reaches the job.
Napi::Value LoopbackUp(const Napi::CallbackInfo& info) {
  int nsfd = info[0].As<Napi::Number>().Int32Value();
  auto ns = std::make_shared<Fd>(fcntl(nsfd, F_DUPFD_CLOEXEC, 0));
  if (!*ns) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    d.Reject(ToJsError(info.Env(), ErrnoError(errno, "fcntl(F_DUPFD_CLOEXEC)")).Value());
    return d.Promise();
  }
  return RunOnNsThread(
      info.Env(),
      [=] {
        EnterNetns(ns->get());
        if (int rc = SetLoopbackUp(); rc < 0) throw ErrnoError(-rc, "ioctl(SIOCSIFFLAGS)", "lo");
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// netnsSysctl(path, key, value): writes /proc/sys/<key> (a net.* key, dots as
// slashes) inside the namespace. The path is opened on a pool thread; only the
// write itself runs on the namespace thread.
Napi::Value Sysctl(const Napi::CallbackInfo& info) {
  auto path = StringArg(info, 0), key = StringArg(info, 1), value = StringArg(info, 2);
  return RunAsync(
      info.Env(),
      [=] {
        if (key.rfind("net/", 0) != 0 || key.find("..") != std::string::npos) {
          ThrowCode("ERR_INVALID_ARGUMENT", "sysctl key '" + key + "' is not under net/");
        }
        NsInfo ns = OpenNs(path);
        OnNsThread([&] {
          EnterNetns(ns.fd.get(), path);
          const char* step = "";
          if (int rc = WriteSysctl(key.c_str(), value.c_str(), &step); rc < 0) {
            throw ErrnoError(-rc, step, "/proc/sys/" + key);
          }
        });
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// closeFd(fd): synchronous; close(2) does not block on an nsfs or socket fd.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0 && close(fd) != 0 && errno != EINTR) {
    throw ToJsError(info.Env(), ErrnoError(errno, "close"));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsCreate", Napi::Function::New(env, Create, "netnsCreate"));
  exports.Set("netnsFromPid", Napi::Function::New(env, FromPid, "netnsFromPid"));
  exports.Set("netnsUnshare", Napi::Function::New(env, Unshare, "netnsUnshare"));
  exports.Set("netnsBind", Napi::Function::New(env, Bind, "netnsBind"));
  exports.Set("netnsOpen", Napi::Function::New(env, Open, "netnsOpen"));
  exports.Set("netnsRemove", Napi::Function::New(env, Remove, "netnsRemove"));
  exports.Set("netnsLoopbackUp", Napi::Function::New(env, LoopbackUp, "netnsLoopbackUp"));
  exports.Set("netnsSysctl", Napi::Function::New(env, Sysctl, "netnsSysctl"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace podnet
