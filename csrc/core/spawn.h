// fork/exec of a helper process with explicit fd placement and namespace
// set-up before exec, without N-API. Everything the child needs is prepared
// in a SpawnPlan before fork(); between fork and exec the child makes only
// async-signal-safe calls (signal-safety(7)), so it is safe in a
// multithreaded process. Exec failures come back through a close-on-exec pipe
// (as libuv's uv_spawn does), so SpawnProcess either returns a running, exec'd
// child or the child's errno with the step that failed.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace podnet {

struct SpawnPlan {
  std::string file;
  std::vector<std::string> argv_store, env_store;
  bool inherit_env = true;
  std::vector<int> src, dst;    // place parent fd src[i] at child fd dst[i]
  int userns = -1, netns = -1;  // setns targets (user first)
  int unshare_flags = 0;        // e.g. CLONE_NEWUSER|CLONE_NEWNET for a holder
  bool mount_private = false;   // unshare(CLONE_NEWNS) + make / rprivate
  bool loopback_up = false;     // set lo up in the child's network namespace
  bool setpgid = true;
  std::string cwd;
};

// Forks and execs `plan`: the child's pid, or -errno with `*failed_step`
// naming the step ("fork", "pipe2", "setns(CLONE_NEWNET)", "execve", ...).
// `plan.dst` must not name a child fd twice (-EINVAL).
pid_t SpawnProcess(const SpawnPlan& plan, const char** failed_step);

}  // namespace podnet
