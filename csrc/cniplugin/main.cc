// podnet-cni: podnet's native networking as a CNI plugin, for any runtime that
// speaks CNI (podman's CNI backend, containerd, nerdctl). One exec per command
// as libcni drives plugins: CNI_* in the environment, the configuration on
// stdin, a result (ADD) or an error object on stdout (SPEC.md section 2).
//
// A network configuration list names it by type:
//   {"cniVersion": "1.0.0", "name": "web", "plugins": [{"type": "podnet",
//    "network": "web", "capabilities": {"portMappings": true, "ips": true, "mac": true}}]}
// "network" is the podnet native network (default: the list's name);
// "networksDir" and "stateDir" override /etc/podnet/networks and /var/lib/podnet.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "commands.h"
#include "protocol.h"

namespace {

using podnet::cni::Error;

bool ReadAll(int fd, std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

void Print(const podnet::cni::Json& j) {
  std::string s = j.dump() + "\n";
  fwrite(s.data(), 1, s.size(), stdout);
}

int Report(const Error& e, const std::string& version) {
  Print(podnet::cni::EncodeError(e, version));
  return 1;
}

}  // namespace

int main() {
  using namespace podnet::cni;
  Error err;
  Command cmd;
  if (!ParseCommand(getenv("CNI_COMMAND"), &cmd, &err)) {
    // Run by hand (no CNI_COMMAND): say what this is, as pkg/skel does.
    if (!getenv("CNI_COMMAND")) {
      std::string versions;
      for (const auto& v : kVersions) versions += (versions.empty() ? "" : ", ") + v;
      fprintf(stderr, "podnet CNI plugin; CNI protocol versions supported: %s\n", versions.c_str());
    }
    return Report(err, "");
  }
  std::string stdin;
  if (!ReadAll(0, &stdin)) {
    err = {kIoFailure, "error reading from stdin", strerror(errno)};
    return Report(err, "");
  }
  if (cmd == Command::kVersion) {
    Print(VersionResult(stdin));
    return 0;
  }
  Request req;
  if (!ParseRequest(cmd, stdin, &req, &err)) return Report(err, req.cniVersion);
  Result result;
  if (!Execute(req, &result, &err)) return Report(err, req.cniVersion);
  if (cmd == Command::kAdd) Print(EncodeResult(result, req.cniVersion));
  return 0;
}
