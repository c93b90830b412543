#include "nsthread.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <system_error>
#include <thread>

#include "common.h"

namespace podnet {
namespace {

const char kSelfNs[] = "/proc/thread-self/ns/net";

thread_local bool t_isNsThread = false;
thread_local bool t_moved = false;  // the current job left the thread's own namespace

struct Job {
  std::function<void()> work;
  std::function<void(std::exception_ptr)> done;  // runs after the thread is home again
};

class NsThread {
 public:
  // Queues `job`; starts the thread if none runs. Throws if it cannot start.
  void Post(Job job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The first caller is the main thread or a libuv pool thread, which
      // never leave the process's namespace: that namespace is every
      // namespace thread's home. The spawner starts here too, so it is born
      // at home, and it never moves.
      if (home_ < 0 && homeErr_ == 0) {
        home_ = open(kSelfNs, O_RDONLY | O_CLOEXEC);
        if (home_ < 0) homeErr_ = errno;
      }
      if (!spawner_) {
        std::thread(&NsThread::Spawner, this).detach();
        spawner_ = true;
      }
      if (!running_) Start();
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();  // unlocked: the woken thread need not wait for the mutex
  }

  // The home namespace (an fd never closed), or throws why it is unknown.
  int Home() const {
    if (home_ < 0) throw ErrnoError(homeErr_, "open", kSelfNs);
    return home_;
  }

 private:
  // Under mu_, from a thread at home: a thread inherits its creator's namespace.
  void Start() {
    std::thread(&NsThread::Loop, this).detach();
    running_ = true;
  }

  // Starts the replacements of namespace threads stuck elsewhere. A stuck
  // thread cannot start one itself: its child would be born in the foreign
  // namespace. Nor can it wait for the next Post: queued jobs (and the pool
  // threads blocked in OnNsThread on them) would wait with it.
  void Spawner() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      spawnCv_.wait(lock, [this] { return !running_ && !queue_.empty(); });
      try {
        Start();
      } catch (...) {
        std::deque<Job> failed;
        failed.swap(queue_);
        lock.unlock();
        for (Job& job : failed) job.done(std::current_exception());
        lock.lock();
      }
    }
  }

  void Loop() {
    t_isNsThread = true;
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return !queue_.empty(); });
      Job job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      t_moved = false;
      std::exception_ptr failure;
      try {
        job.work();
      } catch (...) {
        failure = std::current_exception();
      }
      const bool homeAgain = !t_moved || setns(home_, CLONE_NEWNET) == 0;
      job.done(failure);
      lock.lock();
      if (!homeAgain) break;
    }
    // Stuck in another namespace: this thread ends; the spawner starts a fresh
    // one, at home, for the jobs still queued (or the next Post does).
    running_ = false;
    if (!queue_.empty()) spawnCv_.notify_one();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable spawnCv_;
  std::deque<Job> queue_;
  bool running_ = false;
  bool spawner_ = false;
  int home_ = -1;
  int homeErr_ = 0;
};

// Never destroyed: a detached thread may still wait on it at process exit.
NsThread& Instance() {
  static NsThread* t = new NsThread();
  return *t;
}

// Per environment (the main thread, or a worker thread): the thread-safe
// function that carries finished jobs back to its event loop.
struct Completion {
  std::mutex mu;
  bool alive = true;  // false once tsfn is finalized
  napi_threadsafe_function tsfn = nullptr;
  size_t pending = 0;  // main thread only: jobs in flight keep the loop alive
};

struct AsyncJob {
  std::shared_ptr<Completion> completion;
  Napi::Promise::Deferred deferred;
  std::function<void()> work;
  std::function<Napi::Value(Napi::Env)> toJs;
  std::function<void()> undo;
  std::exception_ptr failure;
};

// A result nobody can receive (its environment is gone) is undone, as a job of
// its own, so that it leaves nothing behind.
void Abandon(std::unique_ptr<AsyncJob> job) {
  if (job->failure || !job->undo) return;
  try {
    Instance().Post({job->undo, [](std::exception_ptr) {}});
  } catch (const std::system_error&) {
  }
}

void CallJs(napi_env env, napi_value, void* context, void* data) {
  std::unique_ptr<AsyncJob> job(static_cast<AsyncJob*>(data));
  if (env == nullptr) return Abandon(std::move(job));  // torn down: nobody is waiting
  Completion* c = static_cast<Completion*>(context);
  if (--c->pending == 0) napi_unref_threadsafe_function(env, c->tsfn);
  if (!Settle(Napi::Env(env), job->deferred, job->failure, job->toJs)) Abandon(std::move(job));
}

// The thread-safe function's finalizer, which runs just before it is freed
// (its environment is torn down), marks it gone: a job that ends later drops
// its result instead of calling into freed memory.
void Finalize(napi_env, void* data, void*) {
  std::unique_ptr<std::shared_ptr<Completion>> c(static_cast<std::shared_ptr<Completion>*>(data));
  std::lock_guard<std::mutex> lock((*c)->mu);
  (*c)->alive = false;
}

std::shared_ptr<Completion> CompletionFor(Napi::Env env) {
  auto* slot = env.GetInstanceData<std::shared_ptr<Completion>>();
  if (slot) return *slot;
  auto c = std::make_shared<Completion>();
  auto* keep = new std::shared_ptr<Completion>(c);
  Napi::String name = Napi::String::New(env, "podnet-netns");
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, keep, Finalize, c.get(), CallJs, &c->tsfn) !=
      napi_ok) {
    delete keep;
    throw Napi::Error::New(env, "cannot create the namespace thread's completion queue");
  }
  napi_unref_threadsafe_function(env, c->tsfn);
  env.SetInstanceData(new std::shared_ptr<Completion>(c));
  return c;
}

NativeError StartError(const std::system_error& e) { return ErrnoError(e.code().value(), "pthread_create"); }

}  // namespace

Napi::Value RunOnNsThread(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> toJs,
                          std::function<void()> undo) {
  std::shared_ptr<Completion> c = CompletionFor(env);
  auto* job = new AsyncJob{c, Napi::Promise::Deferred::New(env), std::move(work), std::move(toJs), std::move(undo), {}};
  Napi::Promise promise = job->deferred.Promise();
  if (c->pending++ == 0) napi_ref_threadsafe_function(env, c->tsfn);
  try {
    // From here the job belongs to the namespace thread, then to CallJs.
    Instance().Post({[job] { job->work(); },
                     [job](std::exception_ptr failure) {
                       job->failure = failure;
                       std::shared_ptr<Completion> c = job->completion;  // outlives the job
                       std::unique_lock<std::mutex> lock(c->mu);
                       if (c->alive && napi_call_threadsafe_function(c->tsfn, job, napi_tsfn_nonblocking) == napi_ok)
                         return;
                       lock.unlock();
                       Abandon(std::unique_ptr<AsyncJob>(job));
                     }});
  } catch (const std::system_error& e) {
    if (--c->pending == 0) napi_unref_threadsafe_function(env, c->tsfn);
    job->deferred.Reject(ToJsError(env, StartError(e)).Value());
    delete job;
  }
  return promise;
}

void OnNsThread(const std::function<void()>& fn) {
  if (t_isNsThread) ThrowCode("ERR_NATIVE", "OnNsThread called from the namespace thread");
  std::promise<void> result;
  std::future<void> done = result.get_future();
  try {
    Instance().Post({fn, [&result](std::exception_ptr failure) {
                       if (failure)
                         result.set_exception(failure);
                       else
                         result.set_value();
                     }});
  } catch (const std::system_error& e) {
    throw StartError(e);
  }
  done.get();
}

void EnterNetns(int nsfd, const std::string& path) {
  if (!t_isNsThread) ThrowCode("ERR_NATIVE", "setns outside the namespace thread");
  Instance().Home();
  if (setns(nsfd, CLONE_NEWNET) != 0) ThrowErrno("setns", path);
  t_moved = true;
}

void UnshareNetns() {
  if (!t_isNsThread) ThrowCode("ERR_NATIVE", "unshare outside the namespace thread");
  Instance().Home();
  if (unshare(CLONE_NEWNET) != 0) ThrowErrno("unshare");
  t_moved = true;
}

}  // namespace podnet
