#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "fd.h"
#include "fork.h"
#include "netns.h"

extern char** environ;

namespace podnet {
namespace {

// Steps the child can fail at, reported to the parent with errno.
enum Step : int {
  kSigReset,
  kSetpgid,
  kSetnsUser,
  kSetnsNet,
  kUnshare,
  kMountPrivate,
  kLoopbackUp,
  kDup,
  kChdir,
  kExec
};
const char* const kStepNames[] = {"sigprocmask",
                                  "setpgid",
                                  "setns(CLONE_NEWUSER)",
                                  "setns(CLONE_NEWNET)",
                                  "unshare",
                                  "mount(/, MS_REC|MS_PRIVATE)",
                                  "set lo up",
                                  "dup2",
                                  "chdir",
                                  "execve"};

// What the child reads: null-terminated views and sorted targets, made before fork.
struct ChildView {
  const SpawnPlan* plan;
  char* const* argv;
  char* const* envp;
  const int* keep;  // sorted child fds that stay open across exec
  size_t nkeep;
  int* tmp;    // room for plan->src.size() temporaries
  int max_fd;  // fallback bound when close_range is missing
};

[[noreturn]] void ChildFail(int errfd, Step step, int err = errno) {
  int msg[2] = {step, err};
  ssize_t n;
  do n = write(errfd, msg, sizeof msg);
  while (n < 0 && errno == EINTR);
  _exit(127);
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void ChildMain(const ChildView& v, int errfd, int reset_err) {
  const SpawnPlan& p = *v.plan;
  if (reset_err < 0) ChildFail(errfd, kSigReset, -reset_err);
  if (p.setpgid && setpgid(0, 0) != 0) ChildFail(errfd, kSetpgid);
  // User namespace first: it grants the capabilities the other steps need.
  if (p.userns >= 0 && setns(p.userns, CLONE_NEWUSER) != 0) ChildFail(errfd, kSetnsUser);
  if (p.netns >= 0 && setns(p.netns, CLONE_NEWNET) != 0) ChildFail(errfd, kSetnsNet);
  int flags = p.unshare_flags | (p.mount_private ? CLONE_NEWNS : 0);
  if (flags && unshare(flags) != 0) ChildFail(errfd, kUnshare);
  // A private copy of a shared mount still propagates unmounts to its peers:
  // make the whole tree private so nothing done here reaches the host's mounts.
  if (p.mount_private && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    ChildFail(errfd, kMountPrivate);
  }
  // Here, not by a process run later: the child has every capability in a
  // user namespace it just made, which is what an unprivileged caller lacks.
  if (p.loopback_up) {
    int rc = SetLoopbackUp();
    if (rc < 0) ChildFail(errfd, kLoopbackUp, -rc);
  }

  // Move every source above the highest target first, so no dup2 clobbers a
  // source that is still to be placed; then place them (dup2 clears CLOEXEC).
  int base = v.nkeep == 0 ? 3 : v.keep[v.nkeep - 1] + 1;
  if (errfd < base) {
    errfd = fcntl(errfd, F_DUPFD_CLOEXEC, base);
    if (errfd < 0) _exit(127);
  }
  const size_t n = p.src.size();
  for (size_t i = 0; i < n; i++) {
    v.tmp[i] = fcntl(p.src[i], F_DUPFD_CLOEXEC, base);
    if (v.tmp[i] < 0) ChildFail(errfd, kDup);
  }
  for (size_t i = 0; i < n; i++) {
    if (dup2(v.tmp[i], p.dst[i]) < 0) ChildFail(errfd, kDup);
  }
  // Everything but the placed fds is close-on-exec (the temporaries already are).
  unsigned lo = 0;
  for (size_t i = 0; i < v.nkeep; i++) {
    int k = v.keep[i];
    if (static_cast<unsigned>(k) > lo && syscall(SYS_close_range, lo, k - 1, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = lo; fd < k; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    lo = k + 1;
  }
  if (syscall(SYS_close_range, lo, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = lo; fd < v.max_fd; fd++) {
      if (fd != errfd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
  }
  if (!p.cwd.empty() && chdir(p.cwd.c_str()) != 0) ChildFail(errfd, kChdir);
  execve(p.file.c_str(), v.argv, p.inherit_env ? environ : v.envp);
  ChildFail(errfd, kExec);
}

}  // namespace

pid_t SpawnProcess(const SpawnPlan& plan, const char** failed_step) {
  std::vector<char*> argv, envp;
  for (const auto& s : plan.argv_store) argv.push_back(const_cast<char*>(s.c_str()));
  if (argv.empty()) argv.push_back(const_cast<char*>(plan.file.c_str()));
  argv.push_back(nullptr);
  for (const auto& s : plan.env_store) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  std::vector<int> keep = plan.dst;
  std::sort(keep.begin(), keep.end());
  if (plan.src.size() != plan.dst.size() || std::adjacent_find(keep.begin(), keep.end()) != keep.end()) {
    *failed_step = "dup2";
    return -EINVAL;
  }
  std::vector<int> tmp(plan.src.size());
  long open_max = sysconf(_SC_OPEN_MAX);
  ChildView view{&plan,
                 argv.data(),
                 envp.data(),
                 keep.data(),
                 keep.size(),
                 tmp.data(),
                 open_max > 0 && open_max < 65536 ? static_cast<int>(open_max) : 65536};

  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    *failed_step = "pipe2";
    return -errno;
  }
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);
  int reset_err = 0;
  pid_t pid = ForkResetSignals(&reset_err);
  if (pid == 0) ChildMain(view, err_w.get(), reset_err);
  if (pid < 0) {
    *failed_step = "fork";
    return pid;
  }
  err_w = Fd();

  int msg[2];
  size_t got = 0;
  while (got < sizeof msg) {
    ssize_t n = read(err_r.get(), reinterpret_cast<char*>(msg) + got, sizeof msg - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  if (got != sizeof msg) return pid;  // exec'd: the pipe closed on exec
  // The child failed before exec and exits 127.
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  *failed_step = kStepNames[msg[0] >= kSigReset && msg[0] <= kExec ? msg[0] : kExec];
  return -(msg[1] > 0 ? msg[1] : EIO);
}

}  // namespace podnet
