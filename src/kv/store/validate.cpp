// Request checks etcd makes before a write is proposed: shape (empty keys, op counts, empty
// ops, ignore_* flags) for the whole txn first, then puts that collide with other puts or
// deletes of the same branch.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "ringwire/kv/store/mvcc_store.hpp"

namespace ringwire::kv::store {

namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using Ops = google::protobuf::RepeatedPtrField<RequestOp>;

std::optional<Error> check_put(const etcdserverpb::PutRequest& p) {
  if (p.key().empty()) return err_empty_key();
  if (p.ignore_value() && !p.value().empty()) return err_value_provided();
  if (p.ignore_lease() && p.lease() != 0) return err_lease_provided();
  return std::nullopt;
}

std::optional<Error> check_txn(const TxnRequest& t, int max_ops);

std::optional<Error> check_op(const RequestOp& op, int max_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      if (op.request_range().key().empty()) return err_empty_key();
      return std::nullopt;
    case RequestOp::kRequestPut:
      return check_put(op.request_put());
    case RequestOp::kRequestDeleteRange:
      if (op.request_delete_range().key().empty()) return err_empty_key();
      return std::nullopt;
    case RequestOp::kRequestTxn:
      return check_txn(op.request_txn(), max_ops);
    default:
      return err_key_not_found();  // etcd's answer to an empty op
  }
}

// etcd counts the largest of compares, success ops and failure ops, and a nested txn gets
// what its parent left of the budget.
std::optional<Error> check_txn(const TxnRequest& t, int max_ops) {
  const int n = std::max({t.compare_size(), t.success_size(), t.failure_size()});
  if (n > max_ops) return err_too_many_ops();
  for (const auto& c : t.compare()) {
    if (c.key().empty()) return err_empty_key();
  }
  for (const Ops* ops : {&t.success(), &t.failure()}) {
    for (const auto& op : *ops) {
      if (auto e = check_op(op, max_ops - n)) return e;
    }
  }
  return std::nullopt;
}

// A delete as etcd's overlap check sees it: one key, or the plain string interval
// [key, range_end). That interval takes range_end literally, so a "\0" (to the end) delete
// overlaps nothing there; etcd lets such txns through and so do we.
struct Del {
  std::string key, end;
  bool hits(const std::string& k) const { return end.empty() ? k == key : (key <= k && k < end); }
};

struct Branch {
  std::set<std::string> puts;
  std::vector<Del> dels;
  bool deleted(const std::string& k) const {
    return std::any_of(dels.begin(), dels.end(), [&](const Del& d) { return d.hits(k); });
  }
};

// The puts and deletes of one branch, nested txns included. A nested txn's two branches may
// put the same key (only one runs); a nested put may not hit a delete of this level or of an
// earlier nested txn, nor a put already seen.
std::optional<Error> collect(const Ops& ops, Branch* out) {
  for (const auto& op : ops) {
    if (op.has_request_delete_range()) {
      const auto& d = op.request_delete_range();
      out->dels.push_back(Del{d.key(), d.range_end()});
    }
  }
  for (const auto& op : ops) {
    if (!op.has_request_txn()) continue;
    Branch then_b, else_b;
    if (auto e = collect(op.request_txn().success(), &then_b)) return e;
    if (auto e = collect(op.request_txn().failure(), &else_b)) return e;
    for (const auto& k : then_b.puts) {
      if (out->puts.count(k) != 0 || out->deleted(k)) return err_duplicate_key();
    }
    out->puts.insert(then_b.puts.begin(), then_b.puts.end());
    for (const auto& k : else_b.puts) {
      const bool also_then = then_b.puts.count(k) != 0;
      if ((out->puts.count(k) != 0 && !also_then) || out->deleted(k)) return err_duplicate_key();
      out->puts.insert(k);
    }
    for (Branch* b : {&then_b, &else_b}) {
      out->dels.insert(out->dels.end(), b->dels.begin(), b->dels.end());
    }
  }
  for (const auto& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (out->puts.count(k) != 0 || out->deleted(k)) return err_duplicate_key();
    out->puts.insert(k);
  }
  return std::nullopt;
}

}  // namespace

std::optional<Error> MvccStore::validate(const pb::Command& cmd) const {
  switch (cmd.op_case()) {
    case pb::Command::kPut:
      if (auto e = check_put(cmd.put())) return e;
      // No leases exist, so any lease id is unknown (etcd finds this at apply).
      if (cmd.put().lease() != 0) return err_lease_not_found();
      return std::nullopt;
    case pb::Command::kDeleteRange:
      if (cmd.delete_range().key().empty()) return err_empty_key();
      return std::nullopt;
    case pb::Command::kTxn: {
      if (auto e = check_txn(cmd.txn(), kMaxTxnOps)) return e;
      for (const Ops* ops : {&cmd.txn().success(), &cmd.txn().failure()}) {
        Branch b;
        if (auto e = collect(*ops, &b)) return e;
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace ringwire::kv::store
