#include "nft_elements.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "netlink.h"

namespace podnet {
namespace native {

// Elements per NEWSETELEM/DELSETELEM message: a message's element list is one
// attribute, whose length is 16 bits (at most ~64 bytes an element here).
constexpr size_t kElemsPerMessage = 512;

int SetElems(bool add, const std::vector<SetElem>& elems, const char* table) {
  if (elems.empty()) return 0;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return -errno;
  Netlink nl(fd);
  // Every acknowledged request gets its reply; should one not come, fail instead of hanging a pool thread.
  timeval tv{5, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return -errno;
  // An error reply then carries only the failed message's header, not the
  // whole message (which outgrows a read buffer for a large range).
  int one = 1;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0) return -errno;
  NlBatch b;
  // The batch is one transaction: all elements or none (nfnetlink.c, nfnetlink_rcv_batch).
  nfgenmsg batch{};
  batch.nfgen_family = AF_UNSPEC;
  batch.version = NFNETLINK_V0;
  batch.res_id = htons(NFNL_SUBSYS_NFTABLES);
  b.Begin(NFNL_MSG_BATCH_BEGIN, 0, &batch, sizeof batch, false);
  const uint16_t type = (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
  for (const char* set : {"hp4", "hp6", "hpa4", "hpa6"}) {
    std::vector<const SetElem*> mine;
    for (const auto& e : elems)
      if (e.set == set) mine.push_back(&e);
    for (size_t at = 0; at < mine.size(); at += kElemsPerMessage) {
      nfgenmsg g{};
      g.nfgen_family = NFPROTO_INET;
      g.version = NFNETLINK_V0;
      b.Begin(type, add ? NLM_F_CREATE | NLM_F_EXCL : 0, &g, sizeof g);
      b.PutStr(NFTA_SET_ELEM_LIST_TABLE, table);
      b.PutStr(NFTA_SET_ELEM_LIST_SET, set);
      size_t list = b.NestBegin(NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS);
      for (size_t i = at; i < mine.size() && i < at + kElemsPerMessage; i++) {
        const SetElem& e = *mine[i];
        size_t item = b.NestBegin(NLA_F_NESTED | NFTA_LIST_ELEM);
        size_t key = b.NestBegin(NLA_F_NESTED | NFTA_SET_ELEM_KEY);
        b.Put(NFTA_DATA_VALUE, e.key.data(), e.key.size());
        b.NestEnd(key);
        if (add) {
          size_t data = b.NestBegin(NLA_F_NESTED | NFTA_SET_ELEM_DATA);
          b.Put(NFTA_DATA_VALUE, e.data.data(), e.data.size());
          b.NestEnd(data);
        }
        b.NestEnd(item);
      }
      b.NestEnd(list);
    }
  }
  b.Begin(NFNL_MSG_BATCH_END, 0, &batch, sizeof batch, false);
  // The batch goes in one send: make room for it (SO_SNDBUFFORCE needs
  // CAP_NET_ADMIN, which writing nf_tables needs anyway), as libnftables does.
  int size = static_cast<int>(b.bytes()) + 4096;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) < 0)
    return -errno;
  return nl.Run(b);
}

}  // namespace native
}  // namespace podnet
