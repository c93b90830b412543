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

int SetElems(bool add, const std::vector<SetElem>& elems, const char* table) {
  if (elems.empty()) return 0;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return -errno;
  Netlink nl(fd);
  // Every acknowledged request gets its reply; should one not come, fail instead of hanging a pool thread.
  timeval tv{5, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return -errno;
  NlBatch b;
  // The batch is one transaction: all elements or none (nfnetlink.c, nfnetlink_rcv_batch).
  nfgenmsg batch{};
  batch.nfgen_family = AF_UNSPEC;
  batch.version = NFNETLINK_V0;
  batch.res_id = htons(NFNL_SUBSYS_NFTABLES);
  b.Begin(NFNL_MSG_BATCH_BEGIN, 0, &batch, sizeof batch, false);
  const uint16_t type = (NFNL_SUBSYS_NFTABLES << 8) | (add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
  for (const char* set : {"hp4", "hp6", "hpa4", "hpa6"}) {
    bool any = false;
    for (const auto& e : elems) any = any || e.set == set;
    if (!any) continue;
    nfgenmsg g{};
    g.nfgen_family = NFPROTO_INET;
    g.version = NFNETLINK_V0;
    b.Begin(type, add ? NLM_F_CREATE | NLM_F_EXCL : 0, &g, sizeof g);
    b.PutStr(NFTA_SET_ELEM_LIST_TABLE, table);
    b.PutStr(NFTA_SET_ELEM_LIST_SET, set);
    size_t list = b.NestBegin(NLA_F_NESTED | NFTA_SET_ELEM_LIST_ELEMENTS);
    for (const auto& e : elems) {
      if (e.set != set) continue;
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
  b.Begin(NFNL_MSG_BATCH_END, 0, &batch, sizeof batch, false);
  return nl.Run(b);
}

}  // namespace native
}  // namespace podnet
