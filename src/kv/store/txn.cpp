// Txn apply, in etcd's order: compares for the whole path (nested txns too) against the state
// before the txn, then the path's puts and ranges are checked against that state, then the
// ops run in order, each seeing the earlier ones. The txn is one revision.

#include "ringwire/kv/store/mvcc_store.hpp"
#include "store/failed.hpp"
#include "store/scan.hpp"

namespace ringwire::kv::store {

namespace {

using etcdserverpb::Compare;

template <class T>
int sign(const T& have, const T& want) {
  return have < want ? -1 : (want < have ? 1 : 0);
}

bool holds(Compare::CompareResult result, int cmp) {
  switch (result) {
    case Compare::EQUAL:
      return cmp == 0;
    case Compare::NOT_EQUAL:
      return cmp != 0;
    case Compare::GREATER:
      return cmp > 0;
    case Compare::LESS:
      return cmp < 0;
    default:
      return false;
  }
}

// A field of the oneof that is not the one set reads as 0 / "", which is what etcd compares
// against when the target and the value disagree.
template <class R>
int compare_one(const Compare& c, const R* r) {
  switch (c.target()) {
    case Compare::VALUE:
      return sign(r != nullptr ? r->value : std::string(), c.value());
    case Compare::CREATE:
      return sign<std::int64_t>(r != nullptr ? r->create_revision : 0, c.create_revision());
    case Compare::MOD:
      return sign<std::int64_t>(r != nullptr ? r->main : 0, c.mod_revision());
    case Compare::VERSION:
      return sign<std::int64_t>(r != nullptr ? r->version : 0, c.version());
    case Compare::LEASE:
      return sign<std::int64_t>(0, c.lease());  // no leases: every key has lease 0
    default:
      return 0;
  }
}

}  // namespace

bool MvccStore::compare(const etcdserverpb::Compare& c) const {
  bool any = false;
  bool all = true;
  scan(index_, KeyRange{c.key(), c.range_end()}, [&](const std::string&, const History& h) {
    if (h.empty() || h.back().tombstone) return;
    any = true;
    if (!holds(c.result(), compare_one(c, &h.back()))) all = false;
  });
  if (any) return all;
  // No key: etcd compares a zero KeyValue, except that a value compare is always false (a
  // missing value is not the empty value).
  if (c.target() == Compare::VALUE) return false;
  return holds(c.result(), compare_one<Rev>(c, nullptr));
}

void MvccStore::txn_path(const etcdserverpb::TxnRequest& t, std::vector<bool>* path) const {
  bool ok = true;
  for (const auto& c : t.compare()) {
    if (!compare(c)) {
      ok = false;
      break;
    }
  }
  path->push_back(ok);
  for (const auto& op : ok ? t.success() : t.failure()) {
    if (op.has_request_txn()) txn_path(op.request_txn(), path);
  }
}

std::optional<Error> MvccStore::txn_check(const etcdserverpb::TxnRequest& t,
                                          const std::vector<bool>& path, std::size_t* pos,
                                          bool puts) const {
  const bool ok = path[(*pos)++];
  for (const auto& op : ok ? t.success() : t.failure()) {
    if (op.has_request_txn()) {
      if (auto e = txn_check(op.request_txn(), path, pos, puts)) return e;
    } else if (puts && op.has_request_put()) {
      const auto& p = op.request_put();
      if ((p.ignore_value() || p.ignore_lease()) && live(p.key()) == nullptr) {
        return err_key_not_found();
      }
      if (p.lease() != 0) return err_lease_not_found();
    } else if (!puts && op.has_request_range()) {
      if (auto e = check_range_rev(op.request_range().revision(), revision_)) return e;
    }
  }
  return std::nullopt;
}

std::optional<Error> MvccStore::txn_exec(WriteCtx& w, const etcdserverpb::TxnRequest& t,
                                         const std::vector<bool>& path, std::size_t* pos,
                                         etcdserverpb::TxnResponse* out) {
  const bool ok = path[(*pos)++];
  out->set_succeeded(ok);
  for (const auto& op : ok ? t.success() : t.failure()) {
    etcdserverpb::ResponseOp* r = out->add_responses();
    switch (op.request_case()) {
      case etcdserverpb::RequestOp::kRequestRange: {
        auto* rr = r->mutable_response_range();
        if (auto e = do_range(op.request_range(), w.begin_rev, rr)) return e;
        rr->mutable_header()->set_revision(w.rev());
        break;
      }
      case etcdserverpb::RequestOp::kRequestPut:
        // Only fails when an earlier op of this txn deleted the key (etcd refuses that).
        if (auto e = do_put(w, op.request_put(), r->mutable_response_put())) return e;
        break;
      case etcdserverpb::RequestOp::kRequestDeleteRange:
        do_delete(w, op.request_delete_range(), r->mutable_response_delete_range());
        break;
      case etcdserverpb::RequestOp::kRequestTxn: {
        // etcd leaves a nested txn's header empty.
        auto* tr = r->mutable_response_txn();
        tr->mutable_header();
        if (auto e = txn_exec(w, op.request_txn(), path, pos, tr)) return e;
        break;
      }
      default:
        break;  // an empty op answers an empty response
    }
  }
  return std::nullopt;
}

pb::ApplyResult MvccStore::apply_txn(const etcdserverpb::TxnRequest& t) {
  std::vector<bool> path;
  txn_path(t, &path);
  // etcd checks every put on the path before any range.
  for (bool puts : {true, false}) {
    std::size_t pos = 0;
    if (auto e = txn_check(t, path, &pos, puts)) return failed(*e);
  }
  pb::ApplyResult res;
  WriteCtx w = begin();
  std::size_t pos = 0;
  if (auto e = txn_exec(w, t, path, &pos, res.mutable_txn())) {
    rollback(w);
    return failed(*e);
  }
  commit(w);
  res.mutable_txn()->mutable_header()->set_revision(revision_);
  return res;
}

}  // namespace ringwire::kv::store
