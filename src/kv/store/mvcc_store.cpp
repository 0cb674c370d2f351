// The store's core: the history index, how one write appends records (and is taken back or
// committed), and the put and delete-range writes.
#include "ringwire/kv/store/mvcc_store.hpp"

#include <algorithm>

#include "store/failed.hpp"
#include "store/scan.hpp"

namespace ringwire::kv::store {

std::size_t MvccStore::key_count() const {
  return live_keys_;
}
std::size_t MvccStore::approximate_bytes() const {
  return bytes_;
}

const MvccStore::Rev* MvccStore::at(const History& h, std::int64_t rev) {
  // Records are in (main, sub) order, so the newest at or before rev is just before the
  // first one past it.
  auto it = std::upper_bound(h.begin(), h.end(), rev,
                             [](std::int64_t r, const Rev& x) { return r < x.main; });
  if (it == h.begin()) return nullptr;
  return &*std::prev(it);
}

void MvccStore::fill_kv(std::string_view key, const Rev& r, bool keys_only, mvccpb::KeyValue* kv) {
  kv->set_key(std::string(key));
  kv->set_mod_revision(r.main);
  if (r.tombstone) return;  // etcd's DELETE event kv: the key and the delete's revision only
  kv->set_create_revision(r.create_revision);
  kv->set_version(r.version);
  if (!keys_only) kv->set_value(r.value);
}

const MvccStore::Rev* MvccStore::live(std::string_view key) const {
  auto it = index_.find(key);
  if (it == index_.end() || it->second.empty() || it->second.back().tombstone) return nullptr;
  return &it->second.back();
}

MvccStore::WriteCtx MvccStore::begin() const {
  WriteCtx w;
  w.begin_rev = revision_;
  return w;
}

void MvccStore::append(WriteCtx& w, const std::string& key, Rev r) {
  r.main = w.begin_rev + 1;
  r.sub = w.next_sub++;
  History& h = index_[key];
  const Rev* prev = h.empty() ? nullptr : &h.back();
  const bool was_live = prev != nullptr && !prev->tombstone;

  mvccpb::Event& ev = w.events.emplace_back();
  ev.set_type(r.tombstone ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
  fill_kv(key, r, false, ev.mutable_kv());
  if (was_live) fill_kv(key, *prev, false, ev.mutable_prev_kv());

  if (!r.tombstone && !was_live) ++live_keys_;
  if (r.tombstone && was_live) --live_keys_;
  bytes_ += key.size() + r.value.size();
  h.push_back(std::move(r));
  w.undo.push_back(key);
}

void MvccStore::rollback(WriteCtx& w) {
  for (auto k = w.undo.rbegin(); k != w.undo.rend(); ++k) {
    auto it = index_.find(*k);
    History& h = it->second;
    const Rev& r = h.back();
    const bool prev_live = h.size() > 1 && !h[h.size() - 2].tombstone;
    if (!r.tombstone && !prev_live) --live_keys_;
    if (r.tombstone && prev_live) ++live_keys_;
    bytes_ -= k->size() + r.value.size();
    h.pop_back();
    if (h.empty()) index_.erase(it);
  }
  w = begin();
}

void MvccStore::commit(WriteCtx& w) {
  if (!w.changed()) return;
  revision_ = w.begin_rev + 1;
  if (sink_) sink_(revision_, w.events);
}

std::optional<Error> MvccStore::do_put(WriteCtx& w, const etcdserverpb::PutRequest& req,
                                       etcdserverpb::PutResponse* out) {
  const Rev* cur = live(req.key());
  if ((req.ignore_value() || req.ignore_lease()) && cur == nullptr) return err_key_not_found();
  // There are no leases, so every lease id is unknown.
  if (req.lease() != 0) return err_lease_not_found();
  Rev r;
  r.value = req.ignore_value() ? cur->value : req.value();
  if (cur != nullptr) {
    r.create_revision = cur->create_revision;
    r.version = cur->version + 1;
    if (req.prev_kv()) fill_kv(req.key(), *cur, false, out->mutable_prev_kv());
  } else {
    r.create_revision = w.begin_rev + 1;
    r.version = 1;
  }
  append(w, req.key(), std::move(r));
  out->mutable_header()->set_revision(w.rev());
  return std::nullopt;
}

void MvccStore::do_delete(WriteCtx& w, const etcdserverpb::DeleteRangeRequest& req,
                          etcdserverpb::DeleteRangeResponse* out) {
  std::vector<const std::string*> doomed;
  scan(index_, KeyRange{req.key(), req.range_end()}, [&](const std::string& k, const History& h) {
    if (!h.empty() && !h.back().tombstone) doomed.push_back(&k);
  });
  for (const std::string* k : doomed) {
    if (req.prev_kv()) fill_kv(*k, index_.find(*k)->second.back(), false, out->add_prev_kvs());
    Rev r;
    r.tombstone = true;
    append(w, *k, std::move(r));
  }
  out->set_deleted(static_cast<std::int64_t>(doomed.size()));
  out->mutable_header()->set_revision(w.rev());
}

pb::ApplyResult MvccStore::apply(const pb::Command& cmd) {
  pb::ApplyResult res;
  switch (cmd.op_case()) {
    case pb::Command::kPut: {
      WriteCtx w = begin();
      if (auto e = do_put(w, cmd.put(), res.mutable_put())) {
        rollback(w);
        return failed(*e);
      }
      commit(w);
      return res;
    }
    case pb::Command::kDeleteRange: {
      WriteCtx w = begin();
      do_delete(w, cmd.delete_range(), res.mutable_delete_range());
      commit(w);
      return res;
    }
    case pb::Command::kTxn:
      return apply_txn(cmd.txn());
    case pb::Command::kCompact:
      return apply_compact(cmd.compact());
    default:
      return res;  // membership and other server commands are not the store's
  }
}

}  // namespace ringwire::kv::store
