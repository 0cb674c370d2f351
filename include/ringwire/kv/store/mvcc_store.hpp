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
Error err_compacted();   // OUT_OF_RANGE "etcdserver: mvcc: required revision has been compacted"
Error err_future_rev();  // OUT_OF_RANGE "etcdserver: mvcc: required revision is a future revision"
Error err_key_not_found();    // INVALID_ARGUMENT "etcdserver: key not found"
Error err_empty_key();        // INVALID_ARGUMENT "etcdserver: key is not provided"
Error err_duplicate_key();    // INVALID_ARGUMENT "etcdserver: duplicate key given in txn request"
Error err_too_many_ops();     // INVALID_ARGUMENT "etcdserver: too many operations in txn request"
Error err_lease_not_found();  // NOT_FOUND "etcdserver: requested lease not found"
Error err_value_provided();   // INVALID_ARGUMENT "etcdserver: value is provided" (ignore_value)
Error err_lease_provided();   // INVALID_ARGUMENT "etcdserver: lease is provided" (ignore_lease)

class MvccStore {
 public:
  static constexpr int kMaxTxnOps = 128;

  std::int64_t revision() const { return revision_; }
  std::int64_t compact_revision() const { return compact_revision_; }
  std::size_t key_count() const;          // live keys at the current revision
  std::size_t approximate_bytes() const;  // keys + values over the whole kept history

  // Checks a write before it is proposed (etcd refuses these at the API layer, so they never
  // reach the log): empty key, too many txn ops, the same key put twice in one branch of a txn
  // (also in nested txns, and a put inside a delete range), an empty txn op, ignore_value with
  // a value, ignore_lease with a lease, and a top-level put with lease != 0. nullopt when fine.
  // A lease in a txn put is refused by apply() only when its branch runs, as etcd does.
  std::optional<Error> validate(const pb::Command& cmd) const;

  // Applies a committed write (put, delete_range, txn or compact; `attributes` and the other
  // server commands are not the store's and are ignored) and returns its response with
  // header.revision set. A write that changes nothing (a delete of no key, a txn with only
  // reads) does not bump the revision. Errors an apply can still meet (put with ignore_value or
  // ignore_lease on a missing key, a lease in a txn branch that runs, a txn read at a
  // compacted or future revision, a compact at a compacted or future revision) come back in
  // ApplyResult::grpc_code/error, with the store unchanged. Every change emits events to the
  // sink, once per revision.
  pb::ApplyResult apply(const pb::Command& cmd);

  // A read (Range semantics: range_end, limit, revision, sort, keys_only, count_only,
  // min/max create/mod revision filters). header.revision = the current revision. An empty
  // key is err_empty_key(); a revision below compact_revision() err_compacted() (the
  // compacted revision itself is readable). Only header.revision of *out is set.
  std::optional<Error> range(const etcdserverpb::RangeRequest& req,
                             etcdserverpb::RangeResponse* out) const;

  // The events of every key in [key, range_end) (etcd range rules) with revision >= from, in
  // revision order (sub-revision order inside a txn), for a watch that starts in the past.
  // prev_kv is filled when asked and still in history. err_compacted() when from <
  // compact_revision() (as etcd: a watch may start at the compacted revision itself); from >
  // revision() gives no events. Replaces *out.
  std::optional<Error> events_since(std::string_view key, std::string_view range_end,
                                    std::int64_t from, bool prev_kv,
                                    std::vector<mvccpb::Event>* out) const;

  // Called after each revision-bumping apply with that revision and its events (prev_kv
  // always filled when there was a previous value), so the watch hub can fan them out.
  using EventSink = std::function<void(std::int64_t revision, const std::vector<mvccpb::Event>&)>;
  void set_event_sink(EventSink sink) { sink_ = std::move(sink); }

  // Snapshot of the key space (keys field plus revision and compact_revision; the server adds
  // sessions and members) and restore from one. restore() replaces everything; false when
  // the snapshot is inconsistent (revisions out of order, beyond `revision`, ...), and then
  // the store is left as it was.
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
  using History = std::vector<Rev>;
  using Index = std::map<std::string, History, std::less<>>;

  // One write being applied (a put, a delete or a whole txn). Its records get main =
  // begin_rev + 1 and increasing subs; `undo` lists the key of every appended record so a txn
  // that fails halfway can be taken back.
  struct WriteCtx {
    std::int64_t begin_rev = 0;
    std::int64_t next_sub = 0;
    std::vector<mvccpb::Event> events;
    std::vector<std::string> undo;
    bool changed() const { return next_sub > 0; }
    // What etcd reports in a response inside the write: the new revision once it changed
    // something, the old one before.
    std::int64_t rev() const { return changed() ? begin_rev + 1 : begin_rev; }
  };

  // The newest record of `h` with main <= rev, or nullptr.
  static const Rev* at(const History& h, std::int64_t rev);
  static void fill_kv(std::string_view key, const Rev& r, bool keys_only, mvccpb::KeyValue* kv);
  // The live record of `key` now (including records of the write in progress), or nullptr.
  const Rev* live(std::string_view key) const;

  WriteCtx begin() const;
  void append(WriteCtx& w, const std::string& key, Rev r);
  void rollback(WriteCtx& w);
  void commit(WriteCtx& w);

  std::optional<Error> do_put(WriteCtx& w, const etcdserverpb::PutRequest& req,
                              etcdserverpb::PutResponse* out);
  void do_delete(WriteCtx& w, const etcdserverpb::DeleteRangeRequest& req,
                 etcdserverpb::DeleteRangeResponse* out);
  // Range against the state now; `view_rev` is the newest revision a request may ask for
  // (the revision before the write in progress). Does not set the header.
  std::optional<Error> do_range(const etcdserverpb::RangeRequest& req, std::int64_t view_rev,
                                etcdserverpb::RangeResponse* out) const;
  std::optional<Error> check_range_rev(std::int64_t rev, std::int64_t view_rev) const;

  // Txn, in etcd's order: every compare on the chosen path (nested ones too) is evaluated
  // against the state before the txn, then the path's puts and ranges are checked, then the
  // ops run. `path` holds one bool per txn on the path, in pre-order.
  bool compare(const etcdserverpb::Compare& c) const;
  void txn_path(const etcdserverpb::TxnRequest& t, std::vector<bool>* path) const;
  std::optional<Error> txn_check(const etcdserverpb::TxnRequest& t, const std::vector<bool>& path,
                                 std::size_t* pos, bool puts) const;
  std::optional<Error> txn_exec(WriteCtx& w, const etcdserverpb::TxnRequest& t,
                                const std::vector<bool>& path, std::size_t* pos,
                                etcdserverpb::TxnResponse* out);
  pb::ApplyResult apply_txn(const etcdserverpb::TxnRequest& t);
  pb::ApplyResult apply_compact(const etcdserverpb::CompactionRequest& req);

  // key -> its revisions, oldest first (the "ordered index": prefix ranges are map ranges).
  Index index_;
  std::int64_t revision_ = 1;  // as etcd: an empty store is at revision 1, the first write is 2
  std::int64_t compact_revision_ = 0;
  std::size_t live_keys_ = 0;
  std::size_t bytes_ = 0;
  EventSink sink_;
};

}  // namespace ringwire::kv::store
