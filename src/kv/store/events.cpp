// Watch history: the events a watcher starting in the past has missed, rebuilt from the
// kept records.
#include <algorithm>
#include <tuple>

#include "ringwire/kv/store/mvcc_store.hpp"
#include "store/scan.hpp"

namespace ringwire::kv::store {

std::optional<Error> MvccStore::events_since(std::string_view key, std::string_view range_end,
                                             std::int64_t from, bool prev_kv,
                                             std::vector<mvccpb::Event>* out) const {
  out->clear();
  // The compacted revision itself is still served (as etcd's watch does).
  if (from < compact_revision_) return err_compacted();

  struct Hit {
    std::int64_t main, sub;
    const std::string* key;
    const History* h;
    std::size_t i;
  };
  std::vector<Hit> hits;
  scan(index_, KeyRange{std::string(key), std::string(range_end)},
       [&](const std::string& k, const History& h) {
         auto first = std::lower_bound(h.begin(), h.end(), from,
                                       [](const Rev& x, std::int64_t r) { return x.main < r; });
         for (auto it = first; it != h.end(); ++it) {
           hits.push_back(Hit{it->main, it->sub, &k, &h, static_cast<std::size_t>(it - h.begin())});
         }
       });
  std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
    return std::tie(a.main, a.sub) < std::tie(b.main, b.sub);
  });

  out->reserve(hits.size());
  for (const Hit& hit : hits) {
    const Rev& r = (*hit.h)[hit.i];
    mvccpb::Event& ev = out->emplace_back();
    ev.set_type(r.tombstone ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    fill_kv(*hit.key, r, false, ev.mutable_kv());
    if (prev_kv && hit.i > 0 && !(*hit.h)[hit.i - 1].tombstone) {
      fill_kv(*hit.key, (*hit.h)[hit.i - 1], false, ev.mutable_prev_kv());
    }
  }
  return std::nullopt;
}

}  // namespace ringwire::kv::store
