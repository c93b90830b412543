// Elements of podnet's port maps written straight through nf_tables netlink:
// one batch, one transaction. libnftables resolves names by dumping the
// table's sets and interval elements before every command (0.3-3 ms each
// here, the largest part of publishing a port); a NEWSETELEM needs none of it.
// The table, chains, rules and sets stay in nft syntax (nft.h).
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

namespace podnet {
namespace native {

// One map element in the kernel's layout: each part of a concatenation
// (inet_proto, inet_service, an address) padded to 4 bytes, as nft stores
// them in 32-bit registers (nftables src/datatype.c, concat_type).
struct SetElem {
  std::string set;  // a map of table inet podnet: hp4, hp6, hpa4, hpa6
  std::vector<uint8_t> key, data;
};

// Adds (create: -EEXIST if a key is taken, nothing added) or deletes (-ENOENT
// if a key is absent, nothing deleted) every element in one transaction, in
// `table` of family inet (another name for a floor program of the benchmarks).
int SetElems(bool add, const std::vector<SetElem>& elems, const char* table = "podnet");

}  // namespace native
}  // namespace podnet
