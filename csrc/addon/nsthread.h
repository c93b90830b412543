// The namespace thread: the one thread of the process that changes network
// namespace (unshare, setns). The main thread and libuv's pool threads never
// do. It is a long-lived thread of podnet's own, so creating a namespace costs
// no thread creation, and it returns to its home after each job: the
// namespace of the first thread that used it (the main thread or a pool
// thread, which never move). If it ever cannot, it exits and a fresh one
// takes over, started by a spawner thread that never leaves home, so the
// fresh one is born at home.
#pragma once

#include <napi.h>

#include <functional>

namespace podnet {

// Runs `work` on the namespace thread and settles a promise on the main thread
// with `toJs(env)`, or rejects it with the NativeError `work` threw. No libuv
// pool thread is involved: one hand-off each way. Jobs run one at a time, in
// order, so keep them short. If the result can no longer be delivered (a
// worker thread ended meanwhile), `undo` runs instead, on the namespace thread.
Napi::Value RunOnNsThread(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> toJs,
                          std::function<void()> undo = nullptr);

// Runs `fn` on the namespace thread and waits for it; rethrows what it threw.
// For work already off the main thread (a libuv pool job). Never call it from
// a job of the namespace thread itself.
void OnNsThread(const std::function<void()>& fn);

// Only inside a job of the namespace thread: join the namespace `nsfd`, or a
// new one. The thread goes back to its own namespace when the job ends.
void EnterNetns(int nsfd, const std::string& path = "");
void UnshareNetns();

}  // namespace podnet
