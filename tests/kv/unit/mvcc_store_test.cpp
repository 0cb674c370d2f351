// MvccStore against etcd v3 semantics. Expected values come from etcd's documented behaviour
// and were cross-checked against a real etcd 3.4 (revisions, txn response headers, compaction
// boundaries, validation errors).
#include "ringwire/kv/store/mvcc_store.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ringwire/kv/store/key_range.hpp"

namespace {

namespace store = ringwire::kv::store;
namespace pb = ringwire::kv::pb;
using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;
using store::MvccStore;

constexpr int kInvalidArgument = 3;
constexpr int kNotFound = 5;
constexpr int kOutOfRange = 11;

// --- request builders ---

RequestOp put_op(const std::string& k, const std::string& v, bool prev_kv = false) {
  RequestOp op;
  auto* p = op.mutable_request_put();
  p->set_key(k);
  p->set_value(v);
  p->set_prev_kv(prev_kv);
  return op;
}

RequestOp del_op(const std::string& k, const std::string& end = "", bool prev_kv = false) {
  RequestOp op;
  auto* d = op.mutable_request_delete_range();
  d->set_key(k);
  d->set_range_end(end);
  d->set_prev_kv(prev_kv);
  return op;
}

RequestOp range_op(const std::string& k, const std::string& end = "", std::int64_t rev = 0) {
  RequestOp op;
  auto* r = op.mutable_request_range();
  r->set_key(k);
  r->set_range_end(end);
  r->set_revision(rev);
  return op;
}

RequestOp txn_op(const TxnRequest& t) {
  RequestOp op;
  *op.mutable_request_txn() = t;
  return op;
}

TxnRequest txn(std::vector<Compare> cmp, std::vector<RequestOp> then_ops,
               std::vector<RequestOp> else_ops = {}) {
  TxnRequest t;
  for (auto& c : cmp)
    *t.add_compare() = c;
  for (auto& o : then_ops)
    *t.add_success() = o;
  for (auto& o : else_ops)
    *t.add_failure() = o;
  return t;
}

Compare cmp_int(Compare::CompareTarget target, Compare::CompareResult result,
                const std::string& key, std::int64_t v, const std::string& end = "") {
  Compare c;
  c.set_target(target);
  c.set_result(result);
  c.set_key(key);
  c.set_range_end(end);
  switch (target) {
    case Compare::VERSION:
      c.set_version(v);
      break;
    case Compare::CREATE:
      c.set_create_revision(v);
      break;
    case Compare::MOD:
      c.set_mod_revision(v);
      break;
    case Compare::LEASE:
      c.set_lease(v);
      break;
    default:
      break;
  }
  return c;
}

Compare cmp_value(Compare::CompareResult result, const std::string& key, const std::string& v,
                  const std::string& end = "") {
  Compare c;
  c.set_target(Compare::VALUE);
  c.set_result(result);
  c.set_key(key);
  c.set_range_end(end);
  c.set_value(v);
  return c;
}

pb::Command cmd_put(const std::string& k, const std::string& v, bool prev_kv = false) {
  pb::Command c;
  *c.mutable_put() = put_op(k, v, prev_kv).request_put();
  return c;
}

pb::Command cmd_del(const std::string& k, const std::string& end = "", bool prev_kv = false) {
  pb::Command c;
  *c.mutable_delete_range() = del_op(k, end, prev_kv).request_delete_range();
  return c;
}

pb::Command cmd_txn(const TxnRequest& t) {
  pb::Command c;
  *c.mutable_txn() = t;
  return c;
}

pb::Command cmd_compact(std::int64_t rev) {
  pb::Command c;
  c.mutable_compact()->set_revision(rev);
  return c;
}

// Applies a command that must pass validation and succeed.
pb::ApplyResult ok(MvccStore& s, const pb::Command& c) {
  auto v = s.validate(c);
  EXPECT_FALSE(v.has_value()) << (v ? v->message : "");
  pb::ApplyResult r = s.apply(c);
  EXPECT_EQ(r.grpc_code(), 0u) << r.error();
  return r;
}

RangeResponse get(const MvccStore& s, const std::string& k, const std::string& end = "",
                  std::int64_t rev = 0) {
  RangeRequest req;
  req.set_key(k);
  req.set_range_end(end);
  req.set_revision(rev);
  RangeResponse out;
  auto e = s.range(req, &out);
  EXPECT_FALSE(e.has_value()) << (e ? e->message : "");
  return out;
}

std::optional<store::Error> range_err(const MvccStore& s, const std::string& k, std::int64_t rev) {
  RangeRequest req;
  req.set_key(k);
  req.set_revision(rev);
  RangeResponse out;
  return s.range(req, &out);
}

// "key:create:mod:version:value" per kv, the way the checks below spell expectations.
std::string kv_str(std::string_view key, std::int64_t create, std::int64_t mod,
                   std::int64_t version, std::string_view value) {
  // append() rather than operator+ chains: GCC 12 warns falsely (-Wrestrict) on the latter.
  std::string out(key);
  for (std::int64_t n : {create, mod, version})
    out.append(":").append(std::to_string(n));
  out.append(":").append(value);
  return out;
}

std::string kv_str(const mvccpb::KeyValue& kv) {
  return kv_str(kv.key(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.value());
}

std::vector<std::string> kvs(const RangeResponse& r) {
  std::vector<std::string> out;
  for (const auto& kv : r.kvs())
    out.push_back(kv_str(kv));
  return out;
}

using Strs = std::vector<std::string>;

// --- key ranges ---

TEST(KeyRange, Conventions) {
  const std::string nul("\0", 1);
  store::KeyRange one{"a", ""};
  EXPECT_TRUE(one.contains("a"));
  EXPECT_FALSE(one.contains("ab"));
  store::KeyRange half{"a", "c"};
  EXPECT_TRUE(half.contains("a"));
  EXPECT_TRUE(half.contains("bzz"));
  EXPECT_FALSE(half.contains("c"));
  EXPECT_FALSE(half.contains("0"));
  store::KeyRange from{"b", nul};
  EXPECT_TRUE(from.contains("b"));
  EXPECT_TRUE(from.contains("\xff\xff"));
  EXPECT_FALSE(from.contains("a"));
  store::KeyRange all{nul, nul};
  EXPECT_TRUE(all.contains("a"));
  EXPECT_TRUE(all.contains(nul));
}

TEST(KeyRange, PrefixEnd) {
  const std::string nul("\0", 1);
  EXPECT_EQ(store::prefix_end("a"), "b");
  EXPECT_EQ(store::prefix_end("a\xff"), "b");
  EXPECT_EQ(store::prefix_end("ab"), "ac");
  EXPECT_EQ(store::prefix_end("\xff\xff"), nul);
  EXPECT_EQ(store::prefix_end(""), nul);
}

// --- put / delete revisions ---

TEST(MvccStore, EmptyStoreIsAtRevisionOne) {
  MvccStore s;
  EXPECT_EQ(s.revision(), 1);
  EXPECT_EQ(s.compact_revision(), 0);
  auto r = get(s, "k");
  EXPECT_EQ(r.header().revision(), 1);
  EXPECT_EQ(r.count(), 0);
  EXPECT_EQ(s.key_count(), 0u);
}

TEST(MvccStore, PutDeletePutRevisions) {
  MvccStore s;
  EXPECT_EQ(ok(s, cmd_put("k", "v")).put().header().revision(), 2);
  EXPECT_EQ(kvs(get(s, "k")), Strs{"k:2:2:1:v"});

  auto r = ok(s, cmd_put("k", "v2", true));
  EXPECT_EQ(r.put().header().revision(), 3);
  EXPECT_EQ(kv_str(r.put().prev_kv()), "k:2:2:1:v");
  EXPECT_EQ(kvs(get(s, "k")), Strs{"k:2:3:2:v2"});

  auto d = ok(s, cmd_del("k", "", true));
  EXPECT_EQ(d.delete_range().header().revision(), 4);
  EXPECT_EQ(d.delete_range().deleted(), 1);
  ASSERT_EQ(d.delete_range().prev_kvs_size(), 1);
  EXPECT_EQ(kv_str(d.delete_range().prev_kvs(0)), "k:2:3:2:v2");
  EXPECT_EQ(get(s, "k").count(), 0);
  EXPECT_EQ(s.key_count(), 0u);

  // Recreated: a new generation with its own create revision and version 1.
  EXPECT_EQ(ok(s, cmd_put("k", "v3")).put().header().revision(), 5);
  EXPECT_EQ(kvs(get(s, "k")), Strs{"k:5:5:1:v3"});
  EXPECT_EQ(get(s, "k").header().revision(), 5);
  EXPECT_EQ(s.key_count(), 1u);
}

TEST(MvccStore, PrevKvOfNewKeyIsAbsent) {
  MvccStore s;
  auto r = ok(s, cmd_put("k", "v", true));
  EXPECT_FALSE(r.put().has_prev_kv());
}

TEST(MvccStore, IgnoreValueAndIgnoreLease) {
  MvccStore s;
  ok(s, cmd_put("k", "orig"));
  pb::Command iv;
  iv.mutable_put()->set_key("k");
  iv.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(ok(s, iv).put().header().revision(), 3);
  EXPECT_EQ(kvs(get(s, "k")), Strs{"k:2:3:2:orig"});

  pb::Command il = cmd_put("k", "new");
  il.mutable_put()->set_ignore_lease(true);
  ok(s, il);
  EXPECT_EQ(kvs(get(s, "k")), Strs{"k:2:4:3:new"});

  // On a missing key both are refused at apply, and nothing changes.
  for (auto* flag : {&iv, &il}) {
    pb::Command c = *flag;
    c.mutable_put()->set_key("missing");
    EXPECT_FALSE(s.validate(c).has_value());
    auto r = s.apply(c);
    EXPECT_EQ(r.grpc_code(), static_cast<std::uint32_t>(kInvalidArgument));
    EXPECT_EQ(r.error(), "etcdserver: key not found");
    EXPECT_EQ(s.revision(), 4);
  }
}

TEST(MvccStore, LeaseIsNotFound) {
  MvccStore s;
  pb::Command c = cmd_put("k", "v");
  c.mutable_put()->set_lease(7);
  auto v = s.validate(c);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->grpc_code, kNotFound);
  EXPECT_EQ(v->message, "etcdserver: requested lease not found");
  auto r = s.apply(c);
  EXPECT_EQ(r.grpc_code(), static_cast<std::uint32_t>(kNotFound));
  EXPECT_EQ(s.revision(), 1);
}

TEST(MvccStore, DeleteRangesAndPrefixes) {
  MvccStore s;
  for (const char* k : {"a", "a/1", "a/2", "b", "c"})
    ok(s, cmd_put(k, "v"));  // revs 2..6
  // [a/, a0) is the "a/" prefix: one revision for both, prev_kvs in key order.
  auto d = ok(s, cmd_del("a/", store::prefix_end("a/"), true));
  EXPECT_EQ(d.delete_range().deleted(), 2);
  EXPECT_EQ(d.delete_range().header().revision(), 7);
  ASSERT_EQ(d.delete_range().prev_kvs_size(), 2);
  EXPECT_EQ(d.delete_range().prev_kvs(0).key(), "a/1");
  EXPECT_EQ(d.delete_range().prev_kvs(1).key(), "a/2");
  EXPECT_EQ(kvs(get(s, "a", "c")), (Strs{"a:2:2:1:v", "b:5:5:1:v"}));

  // Deleting nothing: no new revision, the header says the current one.
  auto none = ok(s, cmd_del("zzz"));
  EXPECT_EQ(none.delete_range().deleted(), 0);
  EXPECT_EQ(none.delete_range().header().revision(), 7);
  EXPECT_EQ(s.revision(), 7);

  // "\0" as range_end: every key >= key.
  const std::string nul("\0", 1);
  EXPECT_EQ(ok(s, cmd_del("b", nul)).delete_range().deleted(), 2);
  EXPECT_EQ(s.revision(), 8);
  EXPECT_EQ(kvs(get(s, nul, nul)), Strs{"a:2:2:1:v"});
  // key "\0" and range_end "\0": everything.
  EXPECT_EQ(ok(s, cmd_del(nul, nul)).delete_range().deleted(), 1);
  EXPECT_EQ(s.key_count(), 0u);
  EXPECT_EQ(s.revision(), 9);
}

// --- range options ---

// The same writes as an etcd session (shifted so the first put is revision 2):
// s/a..s/e put, then s/c, s/a, s/e, s/e rewritten.
MvccStore sort_fixture() {
  MvccStore s;
  for (const char* k : {"s/a", "s/b", "s/c", "s/d", "s/e"})
    ok(s, cmd_put(k, "1"));    // 2..6
  ok(s, cmd_put("s/c", "2"));  // 7
  ok(s, cmd_put("s/a", "3"));  // 8
  ok(s, cmd_put("s/e", "0"));  // 9
  ok(s, cmd_put("s/e", "9"));  // 10
  return s;
}

RangeResponse query(const MvccStore& s, RangeRequest req) {
  req.set_key("s/");
  req.set_range_end("s0");
  RangeResponse out;
  auto e = s.range(req, &out);
  EXPECT_FALSE(e.has_value());
  return out;
}

std::vector<std::string> keys(const RangeResponse& r) {
  std::vector<std::string> out;
  for (const auto& kv : r.kvs())
    out.push_back(kv.key());
  return out;
}

TEST(MvccStore, RangeLimitCountAndFlags) {
  MvccStore s = sort_fixture();
  RangeRequest req;
  auto all = query(s, req);
  EXPECT_EQ(kvs(all),
            (Strs{"s/a:2:8:2:3", "s/b:3:3:1:1", "s/c:4:7:2:2", "s/d:5:5:1:1", "s/e:6:10:3:9"}));
  EXPECT_EQ(all.count(), 5);
  EXPECT_FALSE(all.more());
  EXPECT_EQ(all.header().revision(), 10);

  req.set_limit(2);
  auto lim = query(s, req);
  EXPECT_EQ(keys(lim), (Strs{"s/a", "s/b"}));
  EXPECT_TRUE(lim.more());
  EXPECT_EQ(lim.count(), 5);

  req.set_limit(5);
  EXPECT_FALSE(query(s, req).more());
  req.set_limit(-1);  // negative: no limit
  EXPECT_EQ(query(s, req).kvs_size(), 5);

  RangeRequest co;
  co.set_count_only(true);
  co.set_limit(2);
  auto c = query(s, co);
  EXPECT_EQ(c.kvs_size(), 0);
  EXPECT_EQ(c.count(), 5);
  EXPECT_FALSE(c.more());

  RangeRequest ko;
  ko.set_keys_only(true);
  ko.set_limit(2);
  auto k = query(s, ko);
  EXPECT_EQ(kvs(k), (Strs{"s/a:2:8:2:", "s/b:3:3:1:"}));
  EXPECT_TRUE(k.more());
}

TEST(MvccStore, RangeSort) {
  MvccStore s = sort_fixture();
  auto sorted = [&](RangeRequest::SortTarget t, RangeRequest::SortOrder o) {
    RangeRequest req;
    req.set_sort_target(t);
    req.set_sort_order(o);
    return keys(query(s, req));
  };
  // A non-KEY target with order NONE sorts ascending; ties stay in key order.
  EXPECT_EQ(sorted(RangeRequest::VERSION, RangeRequest::NONE),
            (Strs{"s/b", "s/d", "s/a", "s/c", "s/e"}));
  EXPECT_EQ(sorted(RangeRequest::VERSION, RangeRequest::DESCEND),
            (Strs{"s/e", "s/a", "s/c", "s/b", "s/d"}));
  EXPECT_EQ(sorted(RangeRequest::KEY, RangeRequest::DESCEND),
            (Strs{"s/e", "s/d", "s/c", "s/b", "s/a"}));
  EXPECT_EQ(sorted(RangeRequest::KEY, RangeRequest::NONE),
            (Strs{"s/a", "s/b", "s/c", "s/d", "s/e"}));
  EXPECT_EQ(sorted(RangeRequest::MOD, RangeRequest::DESCEND),
            (Strs{"s/e", "s/a", "s/c", "s/d", "s/b"}));
  EXPECT_EQ(sorted(RangeRequest::VALUE, RangeRequest::ASCEND),
            (Strs{"s/b", "s/d", "s/c", "s/a", "s/e"}));
  EXPECT_EQ(sorted(RangeRequest::CREATE, RangeRequest::DESCEND),
            (Strs{"s/e", "s/d", "s/c", "s/b", "s/a"}));

  RangeRequest lim;
  lim.set_sort_target(RangeRequest::VERSION);
  lim.set_sort_order(RangeRequest::ASCEND);
  lim.set_limit(2);
  auto r = query(s, lim);
  EXPECT_EQ(keys(r), (Strs{"s/b", "s/d"}));
  EXPECT_TRUE(r.more());
}

TEST(MvccStore, RangeRevisionFilters) {
  MvccStore s = sort_fixture();
  auto filtered = [&](auto set) {
    RangeRequest req;
    set(req);
    return query(s, req);
  };
  // etcd's count stays the number of keys in the range, filters or not.
  auto minmod = filtered([](RangeRequest& r) { r.set_min_mod_revision(7); });
  EXPECT_EQ(keys(minmod), (Strs{"s/a", "s/c", "s/e"}));
  EXPECT_EQ(minmod.count(), 5);
  auto minmod1 = filtered([](RangeRequest& r) {
    r.set_min_mod_revision(7);
    r.set_limit(1);
  });
  EXPECT_EQ(keys(minmod1), Strs{"s/a"});
  EXPECT_TRUE(minmod1.more());
  EXPECT_EQ(keys(filtered([](RangeRequest& r) { r.set_max_mod_revision(5); })),
            (Strs{"s/b", "s/d"}));
  EXPECT_EQ(keys(filtered([](RangeRequest& r) { r.set_min_create_revision(4); })),
            (Strs{"s/c", "s/d", "s/e"}));
  EXPECT_EQ(keys(filtered([](RangeRequest& r) { r.set_max_create_revision(3); })),
            (Strs{"s/a", "s/b"}));
  auto co = filtered([](RangeRequest& r) {
    r.set_count_only(true);
    r.set_min_mod_revision(7);
  });
  EXPECT_EQ(co.count(), 5);
}

TEST(MvccStore, HistoricalReads) {
  MvccStore s = sort_fixture();
  RangeRequest req;
  req.set_revision(4);
  auto r = query(s, req);
  EXPECT_EQ(kvs(r), (Strs{"s/a:2:2:1:1", "s/b:3:3:1:1", "s/c:4:4:1:1"}));
  EXPECT_EQ(r.count(), 3);
  EXPECT_EQ(r.header().revision(), 10);  // the header is always the current revision
  req.set_revision(10);
  EXPECT_EQ(query(s, req).kvs_size(), 5);
  req.set_revision(-5);  // <= 0: now
  EXPECT_EQ(query(s, req).kvs_size(), 5);

  auto e = range_err(s, "s/a", 11);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->grpc_code, kOutOfRange);
  EXPECT_EQ(e->message, "etcdserver: mvcc: required revision is a future revision");

  auto empty = range_err(s, "", 0);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->grpc_code, kInvalidArgument);
  EXPECT_EQ(empty->message, "etcdserver: key is not provided");
}

TEST(MvccStore, ReadAtDeletedRevision) {
  MvccStore s;
  ok(s, cmd_put("k", "v"));  // 2
  ok(s, cmd_del("k"));       // 3
  ok(s, cmd_put("k", "w"));  // 4
  EXPECT_EQ(kvs(get(s, "k", "", 2)), Strs{"k:2:2:1:v"});
  EXPECT_EQ(get(s, "k", "", 3).count(), 0);
  EXPECT_EQ(kvs(get(s, "k", "", 4)), Strs{"k:4:4:1:w"});
  EXPECT_EQ(get(s, "k", "", 1).count(), 0);
}

// --- txn ---

// x (version 3, value "3"), y (version 1, value "2"); no "missing", nothing in [q, r).
MvccStore compare_fixture() {
  MvccStore s;
  ok(s, cmd_put("x", "1"));  // 2
  ok(s, cmd_put("y", "2"));  // 3
  ok(s, cmd_put("x", "2"));  // 4
  ok(s, cmd_put("x", "3"));  // 5
  return s;
}

bool succeeded(MvccStore& s, std::vector<Compare> cmp) {
  auto r = ok(s, cmd_txn(txn(std::move(cmp), {})));
  return r.txn().succeeded();
}

TEST(MvccStoreTxn, CompareTargets) {
  MvccStore s = compare_fixture();
  const std::string nul("\0", 1);
  // Missing keys compare as version/create/mod/lease 0 ...
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::VERSION, Compare::EQUAL, "missing", 0)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::CREATE, Compare::EQUAL, "missing", 0)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::MOD, Compare::EQUAL, "missing", 0)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::LEASE, Compare::EQUAL, "missing", 0)}));
  // ... but a value compare on a missing key is false whatever the operator.
  EXPECT_FALSE(succeeded(s, {cmp_value(Compare::EQUAL, "missing", "")}));
  EXPECT_FALSE(succeeded(s, {cmp_value(Compare::NOT_EQUAL, "missing", "a")}));

  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::VERSION, Compare::EQUAL, "x", 3)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::VERSION, Compare::GREATER, "x", 2)}));
  EXPECT_FALSE(succeeded(s, {cmp_int(Compare::VERSION, Compare::LESS, "x", 3)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::CREATE, Compare::EQUAL, "x", 2)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::MOD, Compare::EQUAL, "x", 5)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::MOD, Compare::NOT_EQUAL, "x", 4)}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::LEASE, Compare::EQUAL, "x", 0)}));
  EXPECT_TRUE(succeeded(s, {cmp_value(Compare::GREATER, "x", "2")}));
  EXPECT_TRUE(succeeded(s, {cmp_value(Compare::LESS, "x", "4")}));
  EXPECT_TRUE(succeeded(s, {cmp_value(Compare::EQUAL, "x", "3")}));

  // A target whose oneof field is not set compares against 0 (x has version 3 > 0).
  Compare mismatch = cmp_int(Compare::MOD, Compare::GREATER, "x", 100);
  mismatch.set_target(Compare::VERSION);
  EXPECT_TRUE(succeeded(s, {mismatch}));

  // Ranges: every existing key must satisfy; none existing compares like a missing key.
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::VERSION, Compare::GREATER, "x", 0, "z")}));
  EXPECT_FALSE(succeeded(s, {cmp_int(Compare::VERSION, Compare::GREATER, "x", 2, "z")}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::VERSION, Compare::EQUAL, "q", 0, "r")}));
  EXPECT_FALSE(succeeded(s, {cmp_value(Compare::EQUAL, "q", "", "r")}));
  EXPECT_TRUE(succeeded(s, {cmp_int(Compare::VERSION, Compare::GREATER, "x", 0, nul)}));
  EXPECT_FALSE(succeeded(s, {cmp_int(Compare::VERSION, Compare::GREATER, "a", 1, nul)}));

  // All compares must hold.
  EXPECT_FALSE(succeeded(s, {cmp_int(Compare::VERSION, Compare::EQUAL, "x", 3),
                             cmp_int(Compare::VERSION, Compare::EQUAL, "y", 2)}));
  EXPECT_EQ(s.revision(), 5);  // compares alone never write
}

TEST(MvccStoreTxn, BranchesAndOneRevision) {
  MvccStore s;
  ok(s, cmd_put("a", "1"));  // 2
  std::vector<std::pair<std::int64_t, std::size_t>> sunk;
  s.set_event_sink([&](std::int64_t rev, const std::vector<mvccpb::Event>& evs) {
    sunk.emplace_back(rev, evs.size());
  });
  // As in etcd: reads before the first write report the old revision, later ones the new.
  auto r = ok(s, cmd_txn(txn({cmp_int(Compare::VERSION, Compare::EQUAL, "a", 1)},
                             {range_op("a"), put_op("x", "1", true), range_op("x"),
                              put_op("y", "2"), del_op("a", "", true), range_op("a", "z")},
                             {put_op("never", "1")})));
  const auto& t = r.txn();
  EXPECT_TRUE(t.succeeded());
  EXPECT_EQ(t.header().revision(), 3);
  EXPECT_EQ(s.revision(), 3);
  ASSERT_EQ(t.responses_size(), 6);
  EXPECT_EQ(t.responses(0).response_range().header().revision(), 2);
  EXPECT_EQ(kvs(t.responses(0).response_range()), Strs{"a:2:2:1:1"});
  EXPECT_EQ(t.responses(1).response_put().header().revision(), 3);
  EXPECT_FALSE(t.responses(1).response_put().has_prev_kv());
  EXPECT_EQ(t.responses(2).response_range().header().revision(), 3);
  EXPECT_EQ(kvs(t.responses(2).response_range()), Strs{"x:3:3:1:1"});
  EXPECT_EQ(t.responses(3).response_put().header().revision(), 3);
  EXPECT_EQ(t.responses(4).response_delete_range().deleted(), 1);
  EXPECT_EQ(kv_str(t.responses(4).response_delete_range().prev_kvs(0)), "a:2:2:1:1");
  EXPECT_EQ(kvs(t.responses(5).response_range()), (Strs{"x:3:3:1:1", "y:3:3:1:2"}));
  EXPECT_EQ(get(s, "never").count(), 0);
  ASSERT_EQ(sunk.size(), 1u);
  EXPECT_EQ(sunk[0], std::make_pair(std::int64_t{3}, std::size_t{3}));

  // Failure branch.
  auto f = ok(s, cmd_txn(txn({cmp_int(Compare::VERSION, Compare::EQUAL, "a", 1)},
                             {put_op("never", "1")}, {put_op("else", "1")})));
  EXPECT_FALSE(f.txn().succeeded());
  EXPECT_EQ(f.txn().header().revision(), 4);
  EXPECT_EQ(kvs(get(s, "else")), Strs{"else:4:4:1:1"});
  EXPECT_EQ(get(s, "never").count(), 0);
}

TEST(MvccStoreTxn, DeleteHeadersAndReadOnlyTxn) {
  MvccStore s;
  ok(s, cmd_put("x", "1"));  // 2
  auto r = ok(s, cmd_txn(txn({}, {del_op("nope"), put_op("x", "2"), del_op("nope")})));
  ASSERT_EQ(r.txn().responses_size(), 3);
  EXPECT_EQ(r.txn().responses(0).response_delete_range().header().revision(), 2);
  EXPECT_EQ(r.txn().responses(1).response_put().header().revision(), 3);
  EXPECT_EQ(r.txn().responses(2).response_delete_range().header().revision(), 3);
  EXPECT_TRUE(r.txn().succeeded());

  int sunk = 0;
  s.set_event_sink([&](std::int64_t, const std::vector<mvccpb::Event>&) { ++sunk; });
  // A txn that changes nothing keeps the revision and emits nothing.
  auto ro = ok(s, cmd_txn(txn({}, {del_op("nope"), range_op("x")})));
  EXPECT_EQ(ro.txn().header().revision(), 3);
  EXPECT_EQ(s.revision(), 3);
  EXPECT_EQ(sunk, 0);
  auto empty = ok(s, cmd_txn(TxnRequest{}));
  EXPECT_TRUE(empty.txn().succeeded());
  EXPECT_EQ(empty.txn().header().revision(), 3);
}

TEST(MvccStoreTxn, Nested) {
  MvccStore s;
  ok(s, cmd_put("x", "2"));  // 2
  // The nested txn's range sees the outer put; its header is left empty.
  TxnRequest inner = txn({}, {range_op("x"), put_op("x", "3")});
  auto r = ok(s, cmd_txn(txn({}, {put_op("w", "1"), txn_op(inner), range_op("x")})));
  EXPECT_EQ(r.txn().header().revision(), 3);
  ASSERT_EQ(r.txn().responses_size(), 3);
  const auto& nested = r.txn().responses(1).response_txn();
  EXPECT_TRUE(r.txn().responses(1).has_response_txn());
  EXPECT_TRUE(nested.has_header());
  EXPECT_EQ(nested.header().revision(), 0);
  EXPECT_TRUE(nested.succeeded());
  EXPECT_EQ(kvs(nested.responses(0).response_range()), Strs{"x:2:2:1:2"});
  EXPECT_EQ(nested.responses(0).response_range().header().revision(), 3);
  EXPECT_EQ(nested.responses(1).response_put().header().revision(), 3);
  EXPECT_EQ(kvs(r.txn().responses(2).response_range()), Strs{"x:2:3:2:3"});

  // etcd evaluates nested compares against the state before the txn: the outer put of nq
  // is not seen, so the nested txn takes its failure branch.
  TxnRequest probe = txn({cmp_int(Compare::VERSION, Compare::GREATER, "nq", 0)},
                         {put_op("nr1", "")}, {put_op("nr2", "")});
  auto p = ok(s, cmd_txn(txn({}, {put_op("nq", "1"), txn_op(probe)})));
  EXPECT_FALSE(p.txn().responses(1).response_txn().succeeded());
  EXPECT_EQ(get(s, "nr1").count(), 0);
  EXPECT_EQ(get(s, "nr2").count(), 1);
  EXPECT_EQ(s.revision(), 4);
}

TEST(MvccStoreTxn, ErrorsLeaveNoTrace) {
  MvccStore s;
  ok(s, cmd_put("k", "v"));  // 2
  int sunk = 0;
  s.set_event_sink([&](std::int64_t, const std::vector<mvccpb::Event>&) { ++sunk; });
  auto apply_err = [&](const TxnRequest& t) {
    pb::Command c = cmd_txn(t);
    EXPECT_FALSE(s.validate(c).has_value());
    return s.apply(c);
  };
  // A read at a future revision inside the txn fails it, the earlier put included.
  auto fut = apply_err(txn({}, {put_op("zz", ""), range_op("k", "", 1000)}));
  EXPECT_EQ(fut.grpc_code(), static_cast<std::uint32_t>(kOutOfRange));
  EXPECT_EQ(fut.error(), "etcdserver: mvcc: required revision is a future revision");
  // Even the txn's own revision is the future for a read inside it.
  auto own = apply_err(txn({}, {put_op("zz", ""), range_op("k", "", 3)}));
  EXPECT_EQ(own.grpc_code(), static_cast<std::uint32_t>(kOutOfRange));
  // Puts are checked before ranges, as etcd does.
  RequestOp iv;
  iv.mutable_request_put()->set_key("missing");
  iv.mutable_request_put()->set_ignore_value(true);
  auto order = apply_err(txn({}, {range_op("k", "", 1000), iv}));
  EXPECT_EQ(order.error(), "etcdserver: key not found");
  // Lease in the branch that runs.
  RequestOp leased = put_op("zz", "");
  leased.mutable_request_put()->set_lease(5);
  auto lease = apply_err(txn({}, {put_op("zz2", ""), leased}));
  EXPECT_EQ(lease.grpc_code(), static_cast<std::uint32_t>(kNotFound));
  EXPECT_EQ(s.revision(), 2);
  EXPECT_EQ(get(s, "zz").count(), 0);
  EXPECT_EQ(get(s, "zz2").count(), 0);
  EXPECT_EQ(s.key_count(), 1u);
  EXPECT_EQ(sunk, 0);

  // Errors in the branch that does not run do not count.
  auto skipped = ok(s, cmd_txn(txn({cmp_int(Compare::VERSION, Compare::GREATER, "k", 0)},
                                   {range_op("k")}, {iv, leased})));
  EXPECT_TRUE(skipped.txn().succeeded());
}

// --- compaction ---

// An etcd session: k three times, a, delete k, k again (revisions 2..7).
MvccStore compaction_fixture() {
  MvccStore s;
  ok(s, cmd_put("k", "v"));   // 2
  ok(s, cmd_put("k", "v2"));  // 3
  ok(s, cmd_put("k", "v3"));  // 4
  ok(s, cmd_put("a", "1"));   // 5
  ok(s, cmd_del("k"));        // 6
  ok(s, cmd_put("k", "v4"));  // 7
  return s;
}

pb::ApplyResult compact(MvccStore& s, std::int64_t rev) {
  return s.apply(cmd_compact(rev));
}

TEST(MvccStoreCompact, BoundariesMatchEtcd) {
  MvccStore s = compaction_fixture();
  auto c = compact(s, 5);
  EXPECT_EQ(c.grpc_code(), 0u);
  EXPECT_EQ(c.compact().header().revision(), 7);
  EXPECT_EQ(s.revision(), 7);  // compaction is not a write
  EXPECT_EQ(s.compact_revision(), 5);

  // The compacted revision itself is still readable, older ones are not.
  EXPECT_EQ(kvs(get(s, "k", "", 5)), Strs{"k:2:4:3:v3"});
  EXPECT_EQ(kvs(get(s, "a", "", 5)), Strs{"a:5:5:1:1"});
  EXPECT_EQ(get(s, "k", "", 6).count(), 0);
  auto old = range_err(s, "k", 4);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->grpc_code, kOutOfRange);
  EXPECT_EQ(old->message, "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(range_err(s, "k", 99)->message,
            "etcdserver: mvcc: required revision is a future revision");

  for (std::int64_t rev : {5, 4, -1}) {
    auto e = compact(s, rev);
    EXPECT_EQ(e.grpc_code(), static_cast<std::uint32_t>(kOutOfRange));
    EXPECT_EQ(e.error(), "etcdserver: mvcc: required revision has been compacted");
  }
  EXPECT_EQ(compact(s, 99).error(), "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(compact(s, 7).grpc_code(), 0u);  // the current revision may be compacted
  EXPECT_EQ(compact(s, 8).error(), "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(kvs(get(s, "k", "", 7)), Strs{"k:7:7:1:v4"});
  EXPECT_EQ(kvs(get(s, "k")), Strs{"k:7:7:1:v4"});
  EXPECT_EQ(s.key_count(), 2u);
}

TEST(MvccStoreCompact, FreshStoreAtZeroAndOne) {
  MvccStore s;
  EXPECT_EQ(compact(s, 0).grpc_code(), 0u);  // etcd accepts 0 on a never-compacted store
  EXPECT_EQ(compact(s, 1).grpc_code(), 0u);
  EXPECT_EQ(compact(s, 1).grpc_code(), static_cast<std::uint32_t>(kOutOfRange));
  EXPECT_EQ(ok(s, cmd_put("a", "1")).put().header().revision(), 2);
}

TEST(MvccStoreCompact, DropsHistoryAndDeadKeys) {
  MvccStore s;
  ok(s, cmd_put("w", "1"));    // 2
  ok(s, cmd_put("w2", "1"));   // 3
  ok(s, cmd_del("w"));         // 4
  ok(s, cmd_put("w2", "22"));  // 5
  const std::size_t before = s.approximate_bytes();
  EXPECT_EQ(before, (1 + 1) + (2 + 1) + 1 + (2 + 2));
  ASSERT_EQ(compact(s, 4).grpc_code(), 0u);
  // w is gone entirely (its newest record at 4 is a tombstone); w2 keeps its 3 and 5.
  EXPECT_EQ(s.approximate_bytes(), (2 + 1) + (2 + 2));
  EXPECT_EQ(get(s, "w", "", 4).count(), 0);
  EXPECT_EQ(kvs(get(s, "w2", "", 4)), Strs{"w2:3:3:1:1"});
  // As in etcd, the delete at exactly the compacted revision is no longer in the history.
  std::vector<mvccpb::Event> evs;
  ASSERT_FALSE(s.events_since("w", "", 4, true, &evs).has_value());
  EXPECT_TRUE(evs.empty());
  ASSERT_FALSE(s.events_since("w2", "", 4, true, &evs).has_value());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(kv_str(evs[0].kv()), "w2:3:5:2:22");
  EXPECT_EQ(kv_str(evs[0].prev_kv()), "w2:3:3:1:1");  // kept: it is the record at 4
}

// --- watch history and the event sink ---

TEST(MvccStoreEvents, OrderTypesAndPrevKv) {
  MvccStore s;
  ok(s, cmd_put("a", "1"));                                                    // 2
  ok(s, cmd_txn(txn({}, {put_op("x", "1"), put_op("y", "2"), del_op("a")})));  // 3
  ok(s, cmd_put("x", "2"));                                                    // 4

  std::vector<mvccpb::Event> evs;
  const std::string nul("\0", 1);
  ASSERT_FALSE(s.events_since(nul, nul, 1, true, &evs).has_value());
  ASSERT_EQ(evs.size(), 5u);
  // Revision order, and inside the txn the order of its ops (not key order).
  EXPECT_EQ(evs[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(kv_str(evs[0].kv()), "a:2:2:1:1");
  EXPECT_EQ(kv_str(evs[1].kv()), "x:3:3:1:1");
  EXPECT_EQ(kv_str(evs[2].kv()), "y:3:3:1:2");
  EXPECT_EQ(evs[3].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(kv_str(evs[3].kv()), "a:0:3:0:");  // key and the delete's revision only
  EXPECT_EQ(kv_str(evs[3].prev_kv()), "a:2:2:1:1");
  EXPECT_EQ(kv_str(evs[4].kv()), "x:3:4:2:2");
  EXPECT_EQ(kv_str(evs[4].prev_kv()), "x:3:3:1:1");
  EXPECT_FALSE(evs[1].has_prev_kv());

  ASSERT_FALSE(s.events_since("x", "", 1, false, &evs).has_value());
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_FALSE(evs[1].has_prev_kv());
  ASSERT_FALSE(s.events_since("a", "z", 4, true, &evs).has_value());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kv().key(), "x");
  ASSERT_FALSE(s.events_since(nul, nul, 5, true, &evs).has_value());
  EXPECT_TRUE(evs.empty());

  ASSERT_EQ(compact(s, 3).grpc_code(), 0u);
  auto e = s.events_since(nul, nul, 2, true, &evs);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message, "etcdserver: mvcc: required revision has been compacted");
  // From the compacted revision: still served (the delete of a at 3 is gone with a).
  ASSERT_FALSE(s.events_since(nul, nul, 3, true, &evs).has_value());
  ASSERT_EQ(evs.size(), 3u);
  EXPECT_EQ(evs[0].kv().key(), "x");
  EXPECT_EQ(evs[1].kv().key(), "y");
  EXPECT_EQ(evs[2].kv().mod_revision(), 4);
}

TEST(MvccStoreEvents, SinkOncePerRevision) {
  MvccStore s;
  std::vector<std::pair<std::int64_t, std::vector<mvccpb::Event>>> got;
  s.set_event_sink(
      [&](std::int64_t rev, const std::vector<mvccpb::Event>& evs) { got.emplace_back(rev, evs); });
  ok(s, cmd_put("a", "1"));
  ok(s, cmd_put("b", "1"));
  ok(s, cmd_put("a", "2"));
  ok(s, cmd_del("zzz"));     // nothing: no event
  ok(s, cmd_del("a", "c"));  // one revision, two deletes
  ok(s, cmd_compact(3));     // not a write
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].first, 2);
  EXPECT_EQ(got[2].first, 4);
  ASSERT_EQ(got[2].second.size(), 1u);
  // The sink always gets prev_kv.
  EXPECT_EQ(kv_str(got[2].second[0].prev_kv()), "a:2:2:1:1");
  EXPECT_EQ(got[3].first, 5);
  ASSERT_EQ(got[3].second.size(), 2u);
  EXPECT_EQ(got[3].second[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(kv_str(got[3].second[0].prev_kv()), "a:2:4:2:2");
  EXPECT_EQ(kv_str(got[3].second[1].prev_kv()), "b:3:3:1:1");
}

// --- snapshots ---

// Every range result at every readable revision, plus the watch history: what a restored
// store must reproduce.
std::vector<std::string> observe(const MvccStore& s) {
  std::vector<std::string> out;
  const std::string nul("\0", 1);
  out.push_back(kv_str("state", s.revision(), s.compact_revision(),
                       static_cast<std::int64_t>(s.key_count()),
                       std::to_string(s.approximate_bytes())));
  for (std::int64_t rev = std::max<std::int64_t>(s.compact_revision(), 1); rev <= s.revision();
       ++rev) {
    const RangeResponse r = get(s, nul, nul, rev);
    for (const auto& kv : r.kvs())
      out.push_back(std::to_string(rev).append("@") + kv_str(kv));
  }
  std::vector<mvccpb::Event> evs;
  EXPECT_FALSE(s.events_since(nul, nul, s.compact_revision(), true, &evs).has_value());
  for (const auto& e : evs)
    out.push_back(e.ShortDebugString());
  return out;
}

MvccStore snapshot_fixture() {
  MvccStore s;
  ok(s, cmd_put("a", "1"));
  ok(s, cmd_put("b", "1"));
  ok(s, cmd_put("a", "2"));
  ok(s, cmd_del("b"));
  ok(s, cmd_txn(txn({}, {put_op("c", "3"), put_op("d", "4"), del_op("a")})));
  ok(s, cmd_put("b", "again"));
  ok(s, cmd_compact(4));
  ok(s, cmd_put("c", "33"));
  return s;
}

TEST(MvccStoreSnapshot, RoundTrip) {
  MvccStore s = snapshot_fixture();
  pb::StoreSnapshot snap;
  s.encode(&snap);
  EXPECT_EQ(snap.revision(), s.revision());
  EXPECT_EQ(snap.compact_revision(), 4);

  MvccStore r;
  ok(r, cmd_put("junk", "x"));  // restore replaces everything
  ASSERT_TRUE(r.restore(snap));
  EXPECT_EQ(observe(r), observe(s));
  pb::StoreSnapshot again;
  r.encode(&again);
  EXPECT_EQ(again.SerializeAsString(), snap.SerializeAsString());

  // And it keeps working as the same store would.
  EXPECT_EQ(ok(r, cmd_put("a", "new")).put().header().revision(), s.revision() + 1);
  EXPECT_EQ(kvs(get(r, "a")), Strs{"a:9:9:1:new"});
  MvccStore empty;
  pb::StoreSnapshot esnap;
  empty.encode(&esnap);
  MvccStore e2;
  ASSERT_TRUE(e2.restore(esnap));
  EXPECT_EQ(e2.revision(), 1);
}

TEST(MvccStoreSnapshot, RejectsCorruption) {
  MvccStore s = snapshot_fixture();
  pb::StoreSnapshot good;
  s.encode(&good);
  ASSERT_GE(good.keys_size(), 3);

  std::vector<std::pair<const char*, std::function<void(pb::StoreSnapshot&)>>> cases = {
      {"revision beyond snapshot", [](auto& x) { x.set_revision(5); }},
      {"revision 0", [](auto& x) { x.set_revision(0); }},
      {"compact beyond revision", [](auto& x) { x.set_compact_revision(x.revision() + 1); }},
      {"record order",
       [](auto& x) {
         auto* revs = x.mutable_keys(2)->mutable_revisions();
         if (revs->size() > 1)
           revs->SwapElements(0, 1);
         else
           revs->Mutable(0)->set_main(0);
       }},
      {"version gap",
       [](auto& x) {
         auto* k = x.mutable_keys(2);  // c: created at 6, rewritten at 9
         k->mutable_revisions(k->revisions_size() - 1)->set_version(7);
       }},
      {"create changed",
       [](auto& x) {
         auto* k = x.mutable_keys(2);
         k->mutable_revisions(k->revisions_size() - 1)->set_create_revision(3);
       }},
      {"duplicate key", [](auto& x) { *x.add_keys() = x.keys(0); }},
      {"empty key", [](auto& x) { x.mutable_keys(0)->set_key(""); }},
      {"empty history", [](auto& x) { x.mutable_keys(0)->clear_revisions(); }},
      {"tombstone first",
       [](auto& x) {
         auto* k = x.add_keys();
         k->set_key("zz");
         auto* r = k->add_revisions();
         r->set_main(8);
         r->set_sub(5);
         r->set_tombstone(true);
       }},
      {"same (main, sub) twice",
       [](auto& x) {
         auto* k = x.add_keys();
         k->set_key("zz");
         *k->add_revisions() = x.keys(2).revisions(x.keys(2).revisions_size() - 1);
         k->mutable_revisions(0)->set_version(1);
         k->mutable_revisions(0)->set_create_revision(k->revisions(0).main());
       }},
  };
  const auto before = observe(s);
  for (auto& [name, corrupt] : cases) {
    pb::StoreSnapshot bad = good;
    corrupt(bad);
    EXPECT_FALSE(s.restore(bad)) << name;
    EXPECT_EQ(observe(s), before) << name;  // untouched
  }
  EXPECT_TRUE(s.restore(good));
}

// --- validation ---

std::optional<store::Error> check(const TxnRequest& t) {
  MvccStore s;
  return s.validate(cmd_txn(t));
}

std::string verdict(const TxnRequest& t) {
  auto e = check(t);
  return e ? e->message : "ok";
}

std::vector<RequestOp> puts(int n) {
  std::vector<RequestOp> out;
  for (int i = 0; i < n; ++i) {
    std::string k = "t";
    k += std::to_string(i);  // not "t" + ...: GCC 12 warns falsely (-Wrestrict)
    out.push_back(put_op(k, "v"));
  }
  return out;
}

const char* const kDup = "etcdserver: duplicate key given in txn request";
const char* const kTooMany = "etcdserver: too many operations in txn request";
const char* const kEmpty = "etcdserver: key is not provided";

TEST(MvccStoreValidate, TopLevel) {
  MvccStore s;
  EXPECT_FALSE(s.validate(cmd_put("k", "v")).has_value());
  EXPECT_EQ(s.validate(cmd_put("", "v"))->message, kEmpty);
  EXPECT_EQ(s.validate(cmd_put("", "v"))->grpc_code, kInvalidArgument);
  EXPECT_EQ(s.validate(cmd_del(""))->message, kEmpty);
  pb::Command iv = cmd_put("k", "v");
  iv.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(s.validate(iv)->message, "etcdserver: value is provided");
  pb::Command il = cmd_put("k", "v");
  il.mutable_put()->set_ignore_lease(true);
  il.mutable_put()->set_lease(3);
  EXPECT_EQ(s.validate(il)->message, "etcdserver: lease is provided");
  EXPECT_FALSE(s.validate(cmd_compact(5)).has_value());  // checked at apply
  pb::Command attrs;
  attrs.mutable_attributes()->set_name("n1");
  EXPECT_FALSE(s.validate(attrs).has_value());
  auto r = s.apply(attrs);  // not the store's: ignored
  EXPECT_EQ(r.grpc_code(), 0u);
  EXPECT_EQ(s.revision(), 1);
}

TEST(MvccStoreValidate, OpCounts) {
  EXPECT_EQ(verdict(txn({}, puts(128))), "ok");
  EXPECT_EQ(verdict(txn({}, puts(129))), kTooMany);
  EXPECT_EQ(verdict(txn({}, {}, puts(129))), kTooMany);
  EXPECT_EQ(verdict(txn({}, puts(100), puts(100))), "ok");  // branches count separately
  std::vector<Compare> cmps;
  for (int i = 0; i < 129; ++i)
    cmps.push_back(cmp_int(Compare::VERSION, Compare::EQUAL, "c", 0));
  EXPECT_EQ(verdict(txn(cmps, {})), kTooMany);  // compares count too
  cmps.pop_back();
  EXPECT_EQ(verdict(txn(cmps, {})), "ok");
  // A nested txn gets what its parent leaves: 128 - 100.
  std::vector<Compare> hundred(cmps.begin(), cmps.begin() + 100);
  EXPECT_EQ(verdict(txn(hundred, {txn_op(txn({}, puts(28)))})), "ok");
  EXPECT_EQ(verdict(txn(hundred, {txn_op(txn({}, puts(29)))})), kTooMany);
  // Too many is reported before an empty key.
  auto many = puts(128);
  many.insert(many.begin(), put_op("", "v"));
  EXPECT_EQ(verdict(txn({}, many)), kTooMany);
}

TEST(MvccStoreValidate, EmptyKeysAndOps) {
  EXPECT_EQ(verdict(txn({cmp_int(Compare::VERSION, Compare::EQUAL, "", 0)}, {})), kEmpty);
  EXPECT_EQ(verdict(txn({}, {range_op("")})), kEmpty);
  EXPECT_EQ(verdict(txn({}, {put_op("", "")})), kEmpty);
  EXPECT_EQ(verdict(txn({}, {}, {del_op("")})), kEmpty);
  EXPECT_EQ(verdict(txn({}, {txn_op(txn({}, {put_op("", "")}))})), kEmpty);
  EXPECT_EQ(verdict(txn({}, {RequestOp{}})), "etcdserver: key not found");
  // Shape errors come before duplicates.
  EXPECT_EQ(verdict(txn({}, {put_op("k", ""), put_op("k", ""), put_op("", "")})), kEmpty);
  // A lease inside a txn is left to apply (it depends on the branch taken).
  RequestOp leased = put_op("k", "");
  leased.mutable_request_put()->set_lease(5);
  EXPECT_EQ(verdict(txn({}, {leased})), "ok");
}

TEST(MvccStoreValidate, DuplicateKeys) {
  const std::string nul("\0", 1);
  auto T = [](std::vector<RequestOp> t, std::vector<RequestOp> e = {}) {
    return txn_op(txn({}, std::move(t), std::move(e)));
  };
  auto P = [](const char* k) { return put_op(k, "v"); };
  auto D = [](const char* k, std::string end = "") { return del_op(k, end); };
  // Outcomes observed on etcd 3.4 for the same requests.
  EXPECT_EQ(verdict(txn({}, {P("k"), P("k")})), kDup);
  EXPECT_EQ(verdict(txn({}, {P("k"), D("k")})), kDup);
  EXPECT_EQ(verdict(txn({}, {D("k"), P("k")})), kDup);
  EXPECT_EQ(verdict(txn({}, {D("k"), D("k")})), "ok");
  EXPECT_EQ(verdict(txn({}, {D("a", "z"), P("m")})), kDup);
  EXPECT_EQ(verdict(txn({}, {D("a", "m"), P("m")})), "ok");  // half-open
  EXPECT_EQ(verdict(txn({}, {D("a", nul), P("m")})), "ok");  // etcd does not see this overlap
  EXPECT_EQ(verdict(txn({}, {P("k")}, {P("k")})), "ok");
  EXPECT_EQ(verdict(txn({}, {}, {P("k"), D("k")})), kDup);
  EXPECT_EQ(verdict(txn({}, {P("k"), T({P("k")})})), kDup);
  EXPECT_EQ(verdict(txn({}, {T({P("k")}, {P("k")})})), "ok");
  EXPECT_EQ(verdict(txn({}, {T({P("k")}), T({P("k")})})), kDup);
  EXPECT_EQ(verdict(txn({}, {T({}, {P("k")}), T({P("k")})})), kDup);
  EXPECT_EQ(verdict(txn({}, {T({D("k")}), P("k")})), kDup);
  EXPECT_EQ(verdict(txn({}, {T({P("k")}), D("k")})), kDup);
  EXPECT_EQ(verdict(txn({}, {T({D("k")}), T({P("k")})})), kDup);
  EXPECT_EQ(verdict(txn({}, {T({P("k")}), T({D("k")})})), "ok");
  EXPECT_EQ(verdict(txn({}, {T({D("k")}, {P("k")})})), "ok");
  EXPECT_EQ(verdict(txn({}, {T({T({P("k")})}), P("k")})), kDup);  // two levels down
}

TEST(MvccStoreTxn, NulDeleteThenPutInOneTxn) {
  // etcd accepts this (see DuplicateKeys); the put comes after the delete in the same
  // revision, so the key ends up live with a fresh generation.
  MvccStore s;
  const std::string nul("\0", 1);
  ok(s, cmd_put("m", "old"));  // 2
  ok(s, cmd_txn(txn({}, {del_op("a", nul), put_op("m", "new")})));
  EXPECT_EQ(kvs(get(s, "m")), Strs{"m:3:3:1:new"});
  std::vector<mvccpb::Event> evs;
  ASSERT_FALSE(s.events_since("m", "", 3, true, &evs).has_value());
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(evs[1].type(), mvccpb::Event::PUT);
  pb::StoreSnapshot snap;
  s.encode(&snap);
  MvccStore r;
  EXPECT_TRUE(r.restore(snap));
}

// --- randomized comparison with a plain model ---

struct ModelKv {
  std::int64_t create = 0, mod = 0, version = 0;
  std::string value;
};
using ModelState = std::map<std::string, ModelKv>;

// The model: one full map per revision (states[rev]); writes copy the newest.
struct Model {
  std::vector<ModelState> states{ModelState{}, ModelState{}};  // revisions 0 and 1: empty
  std::int64_t compact = 0;
  std::int64_t rev() const { return static_cast<std::int64_t>(states.size()) - 1; }

  // One write: `ops` edit a copy of the newest state; a change makes a new revision.
  template <class F>
  void write(F&& ops) {
    ModelState next = states.back();
    bool changed = false;
    ops(next, rev() + 1, changed);
    if (changed) states.push_back(std::move(next));
  }
  static void put(ModelState& m, const std::string& k, const std::string& v, std::int64_t at,
                  bool& changed) {
    auto it = m.find(k);
    if (it == m.end()) {
      m[k] = ModelKv{at, at, 1, v};
    } else {
      it->second.mod = at;
      ++it->second.version;
      it->second.value = v;
    }
    changed = true;
  }
  static std::int64_t del(ModelState& m, const store::KeyRange& r, bool& changed) {
    std::int64_t n = 0;
    for (auto it = m.begin(); it != m.end();) {
      if (r.contains(it->first)) {
        it = m.erase(it);
        ++n;
        changed = true;
      } else {
        ++it;
      }
    }
    return n;
  }
};

std::vector<std::string> model_range(const ModelState& m, const store::KeyRange& r) {
  std::vector<std::string> out;
  for (const auto& [k, kv] : m) {
    if (!r.contains(k)) continue;
    out.push_back(kv_str(k, kv.create, kv.mod, kv.version, kv.value));
  }
  return out;
}

TEST(MvccStoreModel, RandomOpsMatchModel) {
  std::mt19937_64 rng(20240611);
  const std::vector<std::string> names = {"a",   "a/1", "a/2", "a/3", "ab", "b",
                                          "b/x", "ba",  "c",   "c/1", "d",  "\xff"};
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  auto random_range = [&]() {
    const std::string nul("\0", 1);
    switch (rng() % 4) {
      case 0:
        return store::KeyRange{pick(names), ""};
      case 1: {
        std::string p = pick(names).substr(0, 1);
        return store::KeyRange{p, store::prefix_end(p)};
      }
      case 2:
        return store::KeyRange{pick(names), nul};
      default: {
        std::string a = pick(names), b = pick(names);
        return store::KeyRange{std::min(a, b), std::max(a, b)};
      }
    }
  };

  MvccStore s;
  Model m;
  int events = 0;
  s.set_event_sink([&](std::int64_t, const std::vector<mvccpb::Event>& e) {
    events += static_cast<int>(e.size());
  });
  int expected_events = 0;
  constexpr int kOps = 12000;
  for (int i = 0; i < kOps; ++i) {
    const int kind = static_cast<int>(rng() % 100);
    const std::string v = std::to_string(rng() % 1000);
    if (kind < 45) {
      const std::string k = pick(names);
      auto r = ok(s, cmd_put(k, v));
      m.write([&](ModelState& st, std::int64_t at, bool& ch) { Model::put(st, k, v, at, ch); });
      ++expected_events;
      ASSERT_EQ(r.put().header().revision(), m.rev());
    } else if (kind < 65) {
      const auto kr = random_range();
      auto r = ok(s, cmd_del(kr.key, kr.range_end));
      std::int64_t n = 0;
      m.write([&](ModelState& st, std::int64_t, bool& ch) { n = Model::del(st, kr, ch); });
      expected_events += static_cast<int>(n);
      ASSERT_EQ(r.delete_range().deleted(), n);
      ASSERT_EQ(r.delete_range().header().revision(), m.rev());
    } else if (kind < 90) {
      // compare version(k) == what the model says (or a wrong guess), then distinct puts, a
      // read, and a delete of a key not put in this branch.
      const std::string ck = pick(names);
      const auto& cur = m.states.back();
      const std::int64_t have = cur.count(ck) != 0 ? cur.at(ck).version : 0;
      const std::int64_t guess = rng() % 2 == 0 ? have : have + 1;
      const bool expect_ok = guess == have;
      std::string k1 = pick(names), k2 = pick(names), k3 = pick(names);
      while (k2 == k1)
        k2 = pick(names);
      while (k3 == k1 || k3 == k2)
        k3 = pick(names);
      TxnRequest t =
          txn({cmp_int(Compare::VERSION, Compare::EQUAL, ck, guess)},
              {put_op(k1, v), range_op(k1), put_op(k2, v + "x"), del_op(k3)}, {put_op(k3, v)});
      auto r = ok(s, cmd_txn(t));
      ASSERT_EQ(r.txn().succeeded(), expect_ok);
      std::vector<std::string> seen;
      m.write([&](ModelState& st, std::int64_t at, bool& ch) {
        if (expect_ok) {
          Model::put(st, k1, v, at, ch);
          seen = model_range(st, store::KeyRange{k1, ""});
          Model::put(st, k2, v + "x", at, ch);
          expected_events += 2 + static_cast<int>(Model::del(st, store::KeyRange{k3, ""}, ch));
        } else {
          Model::put(st, k3, v, at, ch);
          ++expected_events;
        }
      });
      ASSERT_EQ(r.txn().header().revision(), m.rev());
      if (expect_ok) {
        ASSERT_EQ(kvs(r.txn().responses(1).response_range()), seen);
      }
    } else if (kind < 92) {
      const std::int64_t lo = std::max<std::int64_t>(m.compact + 1, 1);
      const std::int64_t at = lo + static_cast<std::int64_t>(rng() % 8);
      auto r = s.apply(cmd_compact(at));
      if (at > m.rev()) {
        ASSERT_EQ(r.error(), "etcdserver: mvcc: required revision is a future revision");
      } else {
        ASSERT_EQ(r.grpc_code(), 0u) << r.error();
        m.compact = at;
      }
    }
    // Reads: the newest state and one readable old revision, via the same random ranges.
    for (int probe = 0; probe < 2; ++probe) {
      const auto kr = random_range();
      std::int64_t at = 0;
      if (probe == 1) {
        const std::int64_t lo = std::max<std::int64_t>(m.compact, 1);
        at = lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(m.rev() - lo + 1));
      }
      RangeRequest req;
      req.set_key(kr.key);
      req.set_range_end(kr.range_end);
      req.set_revision(at);
      RangeResponse out;
      ASSERT_FALSE(s.range(req, &out).has_value());
      const auto want = model_range(m.states[static_cast<std::size_t>(at > 0 ? at : m.rev())], kr);
      ASSERT_EQ(kvs(out), want) << "op " << i << " rev " << at;
      ASSERT_EQ(out.count(), static_cast<std::int64_t>(want.size()));
      ASSERT_EQ(out.header().revision(), m.rev());
    }
    if (m.compact > 1) {
      ASSERT_TRUE(range_err(s, "a", m.compact - 1).has_value());
    }
    ASSERT_EQ(s.revision(), m.rev());
    ASSERT_EQ(s.key_count(), m.states.back().size());
  }
  EXPECT_EQ(events, expected_events);

  // The end state survives a snapshot.
  pb::StoreSnapshot snap;
  s.encode(&snap);
  MvccStore r;
  ASSERT_TRUE(r.restore(snap));
  EXPECT_EQ(observe(r), observe(s));
}

}  // namespace
