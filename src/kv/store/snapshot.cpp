// Snapshot encode/restore. restore() checks every invariant the rest of the store relies on
// (a bad snapshot must not become a store that answers wrongly), building the new state on
// the side so a rejected snapshot leaves the store untouched.
#include <set>
#include <utility>

#include "ringwire/kv/store/mvcc_store.hpp"

namespace ringwire::kv::store {

void MvccStore::encode(pb::StoreSnapshot* out) const {
  out->set_revision(revision_);
  out->set_compact_revision(compact_revision_);
  out->clear_keys();
  for (const auto& [key, h] : index_) {
    pb::KeyHistory* kh = out->add_keys();
    kh->set_key(key);
    for (const Rev& r : h) {
      pb::Revision* pr = kh->add_revisions();
      pr->set_main(r.main);
      pr->set_sub(r.sub);
      pr->set_tombstone(r.tombstone);
      pr->set_create_revision(r.create_revision);
      pr->set_version(r.version);
      pr->set_value(r.value);
    }
  }
}

bool MvccStore::restore(const pb::StoreSnapshot& snap) {
  const std::int64_t rev = snap.revision();
  const std::int64_t compact = snap.compact_revision();
  if (rev < 1 || compact < 0 || compact > rev) return false;

  Index index;
  std::size_t live_keys = 0;
  std::size_t bytes = 0;
  std::set<std::pair<std::int64_t, std::int64_t>> seen;  // (main, sub) is store-wide unique
  for (const pb::KeyHistory& kh : snap.keys()) {
    if (kh.key().empty() || kh.revisions().empty()) return false;
    History h;
    h.reserve(static_cast<std::size_t>(kh.revisions_size()));
    int at_or_before_compact = 0;
    for (const pb::Revision& pr : kh.revisions()) {
      Rev r;
      r.main = pr.main();
      r.sub = pr.sub();
      r.tombstone = pr.tombstone();
      r.create_revision = pr.create_revision();
      r.version = pr.version();
      r.value = pr.value();
      if (r.main < 1 || r.main > rev || r.sub < 0) return false;
      if (!seen.emplace(r.main, r.sub).second) return false;
      const Rev* prev = h.empty() ? nullptr : &h.back();
      if (prev != nullptr &&
          (r.main < prev->main || (r.main == prev->main && r.sub <= prev->sub))) {
        return false;
      }
      if (r.main <= compact && compact > 0) {
        // Compaction keeps one live record at or before the compacted revision.
        if (++at_or_before_compact > 1 || r.tombstone) return false;
      }
      if (r.tombstone) {
        if (prev == nullptr || prev->tombstone) return false;  // only a live key is deleted
        if (r.version != 0 || r.create_revision != 0 || !r.value.empty()) return false;
      } else if (prev != nullptr && !prev->tombstone) {
        if (r.create_revision != prev->create_revision || r.version != prev->version + 1) {
          return false;
        }
      } else if (prev == nullptr && r.main <= compact && compact > 0) {
        // The kept record of a compacted key: its earlier versions are gone.
        if (r.version < 1 || r.create_revision < 1 || r.create_revision > r.main) return false;
      } else if (r.version != 1 || r.create_revision != r.main) {
        return false;  // a (re)creation
      }
      bytes += kh.key().size() + r.value.size();
      h.push_back(std::move(r));
    }
    if (!h.back().tombstone) ++live_keys;
    if (!index.emplace(kh.key(), std::move(h)).second) return false;
  }

  index_ = std::move(index);
  revision_ = rev;
  compact_revision_ = compact;
  live_keys_ = live_keys;
  bytes_ = bytes;
  return true;
}

}  // namespace ringwire::kv::store
