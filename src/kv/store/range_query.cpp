// Range reads: which records a request selects, etcd's filter/sort/limit order, and the
// revision checks shared with reads inside a txn.
#include <algorithm>
#include <limits>
#include <utility>

#include "ringwire/kv/store/mvcc_store.hpp"
#include "store/scan.hpp"

namespace ringwire::kv::store {

namespace {

using etcdserverpb::RangeRequest;

// -1/0/1 by the sort target; keys are unique so KEY never ties.
template <class Item>
int by_target(RangeRequest::SortTarget t, const Item& a, const Item& b) {
  auto sign = [](auto x, auto y) { return x < y ? -1 : (y < x ? 1 : 0); };
  switch (t) {
    case RangeRequest::VERSION:
      return sign(a.second->version, b.second->version);
    case RangeRequest::CREATE:
      return sign(a.second->create_revision, b.second->create_revision);
    case RangeRequest::MOD:
      return sign(a.second->main, b.second->main);
    case RangeRequest::VALUE:
      return sign(a.second->value, b.second->value);
    default:
      return sign(*a.first, *b.first);
  }
}

}  // namespace

std::optional<Error> MvccStore::check_range_rev(std::int64_t rev, std::int64_t view_rev) const {
  // etcd checks the future first; the compacted revision itself is still readable.
  if (rev > view_rev) return err_future_rev();
  if (rev > 0 && rev < compact_revision_) return err_compacted();
  return std::nullopt;
}

std::optional<Error> MvccStore::range(const etcdserverpb::RangeRequest& req,
                                      etcdserverpb::RangeResponse* out) const {
  if (req.key().empty()) return err_empty_key();
  if (auto e = do_range(req, revision_, out)) return e;
  out->mutable_header()->set_revision(revision_);
  return std::nullopt;
}

std::optional<Error> MvccStore::do_range(const etcdserverpb::RangeRequest& req,
                                         std::int64_t view_rev,
                                         etcdserverpb::RangeResponse* out) const {
  if (auto e = check_range_rev(req.revision(), view_rev)) return e;
  // revision <= 0 is "now", which inside a txn includes the txn's own earlier writes.
  const std::int64_t read_rev =
      req.revision() > 0 ? req.revision() : std::numeric_limits<std::int64_t>::max();

  using Item = std::pair<const std::string*, const Rev*>;
  std::vector<Item> items;
  scan(index_, KeyRange{req.key(), req.range_end()}, [&](const std::string& k, const History& h) {
    const Rev* r = at(h, read_rev);
    if (r != nullptr && !r->tombstone) items.emplace_back(&k, r);
  });
  // etcd's count is the number of keys in the range, before the revision filters and limit.
  out->set_count(static_cast<std::int64_t>(items.size()));
  if (req.count_only()) return std::nullopt;

  std::erase_if(items, [&](const Item& it) {
    const Rev& r = *it.second;
    return (req.min_mod_revision() > 0 && r.main < req.min_mod_revision()) ||
           (req.max_mod_revision() > 0 && r.main > req.max_mod_revision()) ||
           (req.min_create_revision() > 0 && r.create_revision < req.min_create_revision()) ||
           (req.max_create_revision() > 0 && r.create_revision > req.max_create_revision());
  });

  // Key order is the natural order; a non-KEY target with no order means ascending. Stable
  // sorting keeps ties in key order, which is what etcd returns.
  auto order = req.sort_order();
  const auto target = req.sort_target();
  if (order == RangeRequest::NONE && target != RangeRequest::KEY) order = RangeRequest::ASCEND;
  if (order == RangeRequest::ASCEND) {
    std::stable_sort(items.begin(), items.end(),
                     [&](const Item& a, const Item& b) { return by_target(target, a, b) < 0; });
  } else if (order == RangeRequest::DESCEND) {
    std::stable_sort(items.begin(), items.end(),
                     [&](const Item& a, const Item& b) { return by_target(target, a, b) > 0; });
  }

  std::size_t n = items.size();
  if (req.limit() > 0 && n > static_cast<std::size_t>(req.limit())) {
    n = static_cast<std::size_t>(req.limit());
    out->set_more(true);
  }
  for (std::size_t i = 0; i < n; ++i) {
    fill_kv(*items[i].first, *items[i].second, req.keys_only(), out->add_kvs());
  }
  return std::nullopt;
}

}  // namespace ringwire::kv::store
