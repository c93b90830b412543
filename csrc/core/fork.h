// fork(2) for a multithreaded process whose child runs only async-signal-safe
// code (signal-safety(7)): every signal is blocked in the parent across the
// fork, as libuv's uv_spawn does (src/unix/process.c), so no handler of the
// parent runs in the child; the child then restores default dispositions and
// an empty mask before doing anything else.
#pragma once

#include <sys/types.h>

namespace podnet {

// In the parent: the child's pid, or -errno. In the child: 0, with
// `*child_reset_err` 0 or the -errno of a failed reset (then the child should
// report it and _exit).
pid_t ForkResetSignals(int* child_reset_err);

}  // namespace podnet
