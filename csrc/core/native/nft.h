// nftables through libnftables, loaded with dlopen on first use so that a host
// without libnftables1 still loads the addon (a missing library is a typed
// error naming the package). libnftables rather than libnftnl + libmnl: the
// rules are written in nft's own syntax (readable, the same text an operator
// would type, and what netavark's and kube-proxy's tables can be compared
// with), and one call turns a whole buffer into one kernel transaction, which
// is all the engine needs; the cost per call is measured in BENCHMARKS.md.
#pragma once

#include <string>

namespace podnet {
namespace native {

// Runs `commands` (newline-separated, one transaction). Returns 0, or
// -ENOPKG when libnftables cannot be loaded, or -errno guessed from nft's
// message (-EEXIST, -ENOENT, else -EINVAL); `errText` gets nft's message.
// `output` (optional) gets what list commands print (JSON when `json`).
// One context per process, used under a mutex (a context is not thread-safe).
int NftRun(const std::string& commands, std::string* errText, std::string* output = nullptr, bool json = false);

}  // namespace native
}  // namespace podnet
