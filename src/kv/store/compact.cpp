// Compaction: forget history no read at or after the compacted revision can need.
#include <algorithm>

#include "ringwire/kv/store/mvcc_store.hpp"
#include "store/failed.hpp"

namespace ringwire::kv::store {

pb::ApplyResult MvccStore::apply_compact(const etcdserverpb::CompactionRequest& req) {
  const std::int64_t rev = req.revision();
  // etcd starts "never compacted" below 0, so compacting at 0 on a fresh store succeeds; here
  // 0 means both "never" and "at 0", which compacts nothing either way.
  if (rev < 0 || (compact_revision_ > 0 && rev <= compact_revision_)) {
    return failed(err_compacted());
  }
  if (rev > revision_) return failed(err_future_rev());

  for (auto it = index_.begin(); it != index_.end();) {
    History& h = it->second;
    // Everything before the newest record at or before rev is unreachable: reads at >= rev
    // see that record or later ones.
    auto keep = std::upper_bound(h.begin(), h.end(), rev,
                                 [](std::int64_t r, const Rev& x) { return r < x.main; });
    if (keep != h.begin()) --keep;
    // A tombstone as the oldest record says nothing a missing record does not (etcd drops
    // it too, so a delete at exactly rev is no longer in the watch history).
    if (keep != h.end() && keep->main <= rev && keep->tombstone) ++keep;
    for (auto r = h.begin(); r != keep; ++r)
      bytes_ -= it->first.size() + r->value.size();
    h.erase(h.begin(), keep);
    it = h.empty() ? index_.erase(it) : std::next(it);
  }
  compact_revision_ = rev;

  pb::ApplyResult res;
  res.mutable_compact()->mutable_header()->set_revision(revision_);
  return res;
}

}  // namespace ringwire::kv::store
