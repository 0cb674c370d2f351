// The replicated state machine's key space, with etcd v3 semantics: one store-wide revision
// that every write bumps once (a Txn is one revision; its changes get sub-revisions), and per
// key create_revision, mod_revision and version. History is kept back to the last compaction
// so reads at an old revision and watches from an old revision work.
//
// Single-threaded: the Raft loop is the only caller (it applies committed commands in log
// order and serves reads once they are safe).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"
#include "ringwire/kv/internal.pb.h"

namespace ringwire::kv::store {

// An error as the client sees it: a gRPC status code number and etcd's message text
// ("etcdserver: mvcc: required revision has been compacted", ...).
struct Error {
  int grpc_code = 0;
  std::string message;
};

// etcd's error texts and codes (so etcd clients recognise them).
Error err_compacted();      // OUT_OF_RANGE "etcdserver: mvcc: required revision has been compacted"
Error err_future_rev();     // OUT_OF_RANGE "etcdserver: mvcc: required revision is a future revision"
Error err_key_not_found();  // INVALID_ARGUMENT "etcdserver: key not found"
Error err_empty_key();      // INVALID_ARGUMENT "etcdserver: key is not provided"
Error err_duplicate_key();  // INVALID_ARGUMENT "etcdserver: duplicate key given in txn request"
Error err_too_many_ops();   // INVALID_ARGUMENT "etcdserver: too many operations in txn request"
Error err_lease_not_found();  // NOT_FOUND "etcdserver: requested lease not found"

class MvccStore {
 public:
  static constexpr int kMaxTxnOps = 128;

  std::int64_t revision() const { return revision_; }
  std::int64_t compact_revision() const { return compact_revision_; }
  std::size_t key_count() const;       // live keys at the current revision
  std::size_t approximate_bytes() const;  // keys + values over the whole kept history

  // Checks a write before it is proposed (etcd refuses these at the API layer, so they never
  // reach the log): empty key, lease != 0, too many txn ops, the same key put twice in one
  // branch of a txn (also in nested txns). nullopt when fine.
  std::optional<Error> validate(const pb::Command& cmd) const;

  // Applies a committed write (put, delete_range, txn or compact; `attributes` is not the
  // store's and is ignored) and returns its response with header.revision set. A write that
  // changes nothing (a delete of no key, a txn with only reads) does not bump the revision.
  // Errors an apply can still meet (put with ignore_value on a missing key, a compact at a
  // compacted or future revision) come back in ApplyResult::grpc_code/error, with the store
  // unchanged. Every change emits events to the sink, once per revision.
  pb::ApplyResult apply(const pb::Command& cmd);

  // A read (Range semantics: range_end, limit, revision, sort, keys_only, count_only,
  // min/max create/mod revision filters). header.revision = the current revision.
  std::optional<Error> range(const etcdserverpb::RangeRequest& req,
                             etcdserverpb::RangeResponse* out) const;

  // The events of every key in [key, range_end) (etcd range rules) with revision >= from, in
  // revision order (sub-revision order inside a txn), for a watch that starts in the past.
  // prev_kv is filled when asked and still in history. err_compacted() when from <=
  // compact_revision(); from > revision() gives no events.
  std::optional<Error> events_since(std::string_view key, std::string_view range_end,
                                    std::int64_t from, bool prev_kv,
                                    std::vector<mvccpb::Event>* out) const;

  // Called after each revision-bumping apply with that revision and its events (prev_kv
  // always filled when there was a previous value), so the watch hub can fan them out.
  using EventSink = std::function<void(std::int64_t revision, const std::vector<mvccpb::Event>&)>;
  void set_event_sink(EventSink sink) { sink_ = std::move(sink); }

  // Snapshot of the key space (keys field plus revision and compact_revision; the server adds
  // sessions and members) and restore from one. restore() replaces everything; false when
  // the snapshot is inconsistent (revisions out of order, beyond `revision`, ...).
  void encode(pb::StoreSnapshot* out) const;
  bool restore(const pb::StoreSnapshot& snap);

 private:
  struct Rev {
    std::int64_t main = 0;
    std::int64_t sub = 0;
    bool tombstone = false;
    std::int64_t create_revision = 0;
    std::int64_t version = 0;
    std::string value;
  };
  // key -> its revisions, oldest first (the "ordered index": prefix ranges are map ranges).
  std::map<std::string, std::vector<Rev>, std::less<>> index_;
  std::int64_t revision_ = 0;
  std::int64_t compact_revision_ = 0;
  EventSink sink_;
};

}  // namespace ringwire::kv::store
