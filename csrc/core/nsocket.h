// The one way to get a socket that belongs to another network namespace.
// A socket stays bound to the namespace it was created in, wherever it is used
// later, so the namespace is entered only to create it: on a fresh thread that
// joins the namespace, creates the socket and exits, so no caller's thread
// (the main thread, a libuv pool thread, an executable's only thread) ever
// leaves its namespace. This is containernetworking/plugins pkg/ns's
// discipline (a locked thread that is thrown away) without the Go runtime.
#pragma once

namespace podnet {

// A socket(domain, type | SOCK_CLOEXEC, protocol) created inside the network
// namespace `nsfd`: an fd or -errno.
int SocketInNetns(int nsfd, int domain, int type, int protocol);

// One socket in each of `n` namespaces, made by one fresh thread that joins
// them in turn (one thread for a batch, not one per namespace): 0, or -errno
// if the thread could not be made; then out[i] is an fd or -errno. joined[i] says whether the thread was in namespace
// i, so a caller can tell a refused setns (EPERM: a namespace owned by another user namespace, see userns_socket.h)
// from a failed socket(2). A namespace the thread is already in is not joined again (an unprivileged caller may not
// setns even into its own).
int SocketsInNetnsEach(const int* nsfds, int n, int domain, int type, int protocol, int* out, bool* joined);

// Runs `fn(arg)` on a fresh thread that has joined the network namespace
// `nsfd`; returns what `fn` returns (>= 0 or -errno), or -errno if the thread
// could not be made or could not join. `fn` must only create what it needs
// (sockets) and must not expect to run in any particular thread afterwards.
int RunInNetns(int nsfd, int (*fn)(void*), void* arg);

}  // namespace podnet
