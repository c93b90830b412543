#include "fork.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace podnet {

namespace {

// Async-signal-safe: sigaction, sigemptyset and sigprocmask only.
int ResetSignals() {
  struct sigaction dfl;
  for (size_t i = 0; i < sizeof dfl; i++) reinterpret_cast<char*>(&dfl)[i] = 0;
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) {
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, nullptr);  // EINVAL for NPTL's own: fine
  }
  sigset_t none;
  sigemptyset(&none);
  return sigprocmask(SIG_SETMASK, &none, nullptr) == 0 ? 0 : -errno;
}

}  // namespace

pid_t ForkResetSignals(int* child_reset_err) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  if (pid == 0) {
    *child_reset_err = ResetSignals();
    return 0;
  }
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return pid < 0 ? -err : pid;
}

}  // namespace podnet
