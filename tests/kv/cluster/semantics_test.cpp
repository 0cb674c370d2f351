// etcd v3 semantics through raw gRPC against a 3-member kv_server cluster, and writes /
// linearizable reads through followers.
#include "cluster_fixture.hpp"

namespace ringwire::kv::cluster_test {
namespace {

epb::PutResponse put(epb::KV::Stub* kv, const std::string& k, const std::string& v,
                     bool prev_kv = false) {
  grpc::ClientContext ctx;
  Cluster::set_deadline(ctx, 5s);
  epb::PutRequest req;
  req.set_key(k);
  req.set_value(v);
  req.set_prev_kv(prev_kv);
  epb::PutResponse resp;
  const grpc::Status s = kv->Put(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << "put " << k << ": " << s.error_message();
  return resp;
}

grpc::Status range(epb::KV::Stub* kv, const epb::RangeRequest& req, epb::RangeResponse* resp) {
  grpc::ClientContext ctx;
  Cluster::set_deadline(ctx, 5s);
  return kv->Range(&ctx, req, resp);
}

epb::RangeResponse get(epb::KV::Stub* kv, const std::string& k, std::int64_t rev = 0) {
  epb::RangeRequest req;
  req.set_key(k);
  req.set_revision(rev);
  epb::RangeResponse resp;
  const grpc::Status s = range(kv, req, &resp);
  EXPECT_TRUE(s.ok()) << "get " << k << ": " << s.error_message();
  return resp;
}

epb::RangeResponse get_prefix(epb::KV::Stub* kv, const std::string& p, std::int64_t limit = 0,
                              bool count_only = false) {
  epb::RangeRequest req;
  req.set_key(p);
  req.set_range_end(client::prefix_range_end(p));
  req.set_limit(limit);
  req.set_count_only(count_only);
  epb::RangeResponse resp;
  const grpc::Status s = range(kv, req, &resp);
  EXPECT_TRUE(s.ok()) << "get prefix " << p << ": " << s.error_message();
  return resp;
}

epb::TxnResponse txn(epb::KV::Stub* kv, const epb::TxnRequest& req) {
  grpc::ClientContext ctx;
  Cluster::set_deadline(ctx, 5s);
  epb::TxnResponse resp;
  const grpc::Status s = kv->Txn(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << "txn: " << s.error_message();
  return resp;
}

epb::Compare* add_compare(epb::TxnRequest* t, const std::string& key,
                          epb::Compare::CompareTarget tg, epb::Compare::CompareResult r) {
  auto* c = t->add_compare();
  c->set_key(key);
  c->set_target(tg);
  c->set_result(r);
  return c;
}

void add_put(google::protobuf::RepeatedPtrField<epb::RequestOp>* ops, const std::string& k,
             const std::string& v) {
  auto* p = ops->Add()->mutable_request_put();
  p->set_key(k);
  p->set_value(v);
}

void add_get(google::protobuf::RepeatedPtrField<epb::RequestOp>* ops, const std::string& k) {
  ops->Add()->mutable_request_range()->set_key(k);
}

class SemanticsTest : public ::testing::Test {
 protected:
  void SetUp() override { RINGWIRE_REQUIRE_KV_SERVER(); }
};

TEST_F(SemanticsTest, EtcdKvWatchClusterMaintenance) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value()) << "no leader";
  // Through member 0 (a follower two times in three: its writes are forwarded).
  auto kv = c.kv(0);

  // ---- revisions, versions, create/mod revision, prev_kv ----
  auto p1 = put(kv.get(), "a", "1");
  EXPECT_EQ(p1.header().revision(), 2) << "etcd: the first put on an empty store is revision 2";
  EXPECT_NE(p1.header().cluster_id(), 0u);
  EXPECT_EQ(p1.header().member_id(), c.member(0).id);
  auto p2 = put(kv.get(), "a", "2", /*prev_kv=*/true);
  EXPECT_EQ(p2.header().revision(), 3);
  ASSERT_TRUE(p2.has_prev_kv());
  EXPECT_EQ(p2.prev_kv().value(), "1");
  EXPECT_EQ(p2.prev_kv().mod_revision(), 2);
  EXPECT_EQ(p2.prev_kv().version(), 1);
  auto p_noprev = put(kv.get(), "fresh", "x", /*prev_kv=*/true);
  EXPECT_FALSE(p_noprev.has_prev_kv()) << "prev_kv of a new key";
  EXPECT_EQ(p_noprev.header().revision(), 4);

  auto g = get(kv.get(), "a");
  ASSERT_EQ(g.kvs_size(), 1);
  EXPECT_EQ(g.kvs(0).value(), "2");
  EXPECT_EQ(g.kvs(0).version(), 2);
  EXPECT_EQ(g.kvs(0).create_revision(), 2);
  EXPECT_EQ(g.kvs(0).mod_revision(), 3);
  EXPECT_EQ(g.count(), 1);
  EXPECT_EQ(g.header().revision(), 4);
  EXPECT_EQ(get(kv.get(), "missing").kvs_size(), 0);

  // ---- Range at an old revision ----
  auto old = get(kv.get(), "a", 2);
  ASSERT_EQ(old.kvs_size(), 1);
  EXPECT_EQ(old.kvs(0).value(), "1");
  EXPECT_EQ(old.kvs(0).version(), 1);
  EXPECT_EQ(get(kv.get(), "fresh", 3).kvs_size(), 0) << "fresh did not exist at revision 3";
  {
    epb::RangeRequest req;
    req.set_key("a");
    req.set_revision(1000);
    epb::RangeResponse resp;
    const grpc::Status s = range(kv.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");
  }

  // ---- prefix range, limit, count ----
  put(kv.get(), "p/1", "v1");
  put(kv.get(), "p/3", "v3");
  put(kv.get(), "p/2", "v2");
  put(kv.get(), "q", "not in p/");
  put(kv.get(), "p", "not in p/ either");
  auto pr = get_prefix(kv.get(), "p/");
  ASSERT_EQ(pr.kvs_size(), 3);
  EXPECT_EQ(pr.kvs(0).key(), "p/1");
  EXPECT_EQ(pr.kvs(1).key(), "p/2");
  EXPECT_EQ(pr.kvs(2).key(), "p/3");
  EXPECT_EQ(pr.kvs(2).value(), "v3");
  EXPECT_EQ(pr.count(), 3);
  EXPECT_FALSE(pr.more());
  auto lim = get_prefix(kv.get(), "p/", 2);
  ASSERT_EQ(lim.kvs_size(), 2);
  EXPECT_EQ(lim.kvs(1).key(), "p/2");
  EXPECT_TRUE(lim.more());
  EXPECT_EQ(lim.count(), 3);
  auto cnt = get_prefix(kv.get(), "p/", 0, /*count_only=*/true);
  EXPECT_EQ(cnt.kvs_size(), 0);
  EXPECT_EQ(cnt.count(), 3);
  const std::int64_t rev_before_deletes = cnt.header().revision();

  // ---- delete with prev_kv, prefix delete ----
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    epb::DeleteRangeRequest req;
    req.set_key("p/2");
    req.set_prev_kv(true);
    epb::DeleteRangeResponse resp;
    ASSERT_TRUE(kv->DeleteRange(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.deleted(), 1);
    ASSERT_EQ(resp.prev_kvs_size(), 1);
    EXPECT_EQ(resp.prev_kvs(0).value(), "v2");
    EXPECT_EQ(resp.header().revision(), rev_before_deletes + 1);
  }
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    epb::DeleteRangeRequest req;
    req.set_key("p/");
    req.set_range_end(client::prefix_range_end("p/"));
    req.set_prev_kv(true);
    epb::DeleteRangeResponse resp;
    ASSERT_TRUE(kv->DeleteRange(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.deleted(), 2);
    EXPECT_EQ(resp.prev_kvs_size(), 2);
    EXPECT_EQ(resp.header().revision(), rev_before_deletes + 2)
        << "one delete of many keys is one revision";
  }
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    epb::DeleteRangeRequest req;
    req.set_key("nothing-here");
    epb::DeleteRangeResponse resp;
    ASSERT_TRUE(kv->DeleteRange(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.deleted(), 0);
    EXPECT_EQ(resp.header().revision(), rev_before_deletes + 2) << "no-op delete: no revision";
  }
  EXPECT_EQ(get_prefix(kv.get(), "p/").kvs_size(), 0);
  EXPECT_EQ(get(kv.get(), "p").kvs_size(), 1) << "prefix delete of p/ must not touch p";
  // The deleted keys are still visible at the old revision.
  {
    epb::RangeRequest req;
    req.set_key("p/");
    req.set_range_end(client::prefix_range_end("p/"));
    req.set_revision(rev_before_deletes);
    epb::RangeResponse resp;
    ASSERT_TRUE(range(kv.get(), req, &resp).ok());
    EXPECT_EQ(resp.kvs_size(), 3);
  }

  // ---- txn: compares on value / version / create / mod with then / else ----
  const auto a_now = get(kv.get(), "a").kvs(0);  // value 2, version 2, create 2, mod 3
  {
    epb::TxnRequest t;
    add_compare(&t, "a", epb::Compare::VALUE, epb::Compare::EQUAL)->set_value("2");
    add_compare(&t, "a", epb::Compare::VERSION, epb::Compare::EQUAL)->set_version(2);
    add_compare(&t, "a", epb::Compare::CREATE, epb::Compare::EQUAL)->set_create_revision(2);
    add_compare(&t, "a", epb::Compare::MOD, epb::Compare::LESS)
        ->set_mod_revision(a_now.mod_revision() + 1);
    add_put(t.mutable_success(), "a", "3");
    add_put(t.mutable_success(), "txn-then", "yes");
    add_get(t.mutable_failure(), "a");
    auto r = txn(kv.get(), t);
    EXPECT_TRUE(r.succeeded());
    ASSERT_EQ(r.responses_size(), 2);
    EXPECT_TRUE(r.responses(0).has_response_put());
    const std::int64_t txn_rev = r.header().revision();
    auto a3 = get(kv.get(), "a").kvs(0);
    EXPECT_EQ(a3.value(), "3");
    EXPECT_EQ(a3.version(), 3);
    EXPECT_EQ(a3.mod_revision(), txn_rev);
    EXPECT_EQ(get(kv.get(), "txn-then").kvs(0).mod_revision(), txn_rev)
        << "both puts of one txn share its revision";
  }
  {
    epb::TxnRequest t;
    add_compare(&t, "a", epb::Compare::VERSION, epb::Compare::GREATER)->set_version(10);
    add_put(t.mutable_success(), "a", "wrong");
    add_get(t.mutable_failure(), "a");
    auto r = txn(kv.get(), t);
    EXPECT_FALSE(r.succeeded());
    ASSERT_EQ(r.responses_size(), 1);
    ASSERT_TRUE(r.responses(0).has_response_range());
    ASSERT_EQ(r.responses(0).response_range().kvs_size(), 1);
    EXPECT_EQ(r.responses(0).response_range().kvs(0).value(), "3");
  }
  {
    // A missing key: create_revision 0 (how "put if absent" is written), value compare fails.
    epb::TxnRequest t;
    add_compare(&t, "absent", epb::Compare::CREATE, epb::Compare::EQUAL)->set_create_revision(0);
    add_put(t.mutable_success(), "absent", "created");
    EXPECT_TRUE(txn(kv.get(), t).succeeded());
    EXPECT_FALSE(txn(kv.get(), t).succeeded()) << "second put-if-absent must fail";
    epb::TxnRequest t2;
    add_compare(&t2, "a", epb::Compare::VALUE, epb::Compare::NOT_EQUAL)->set_value("3");
    add_put(t2.mutable_success(), "a", "wrong");
    EXPECT_FALSE(txn(kv.get(), t2).succeeded());
    EXPECT_EQ(get(kv.get(), "absent").kvs(0).value(), "created");
    EXPECT_EQ(get(kv.get(), "a").kvs(0).value(), "3");
  }

  // ---- watch from an old revision: history, then live events ----
  auto wstub = c.watch(c.size() - 1);  // another member than the writes
  WatchSession ws(wstub.get());
  ASSERT_TRUE(ws.create("a", "", 2, false, 0));
  auto created = ws.next(5s);
  ASSERT_TRUE(created.has_value());
  EXPECT_TRUE(created->created());
  const std::int64_t wid = created->watch_id();
  auto hist = ws.events(wid, 3, 5s);
  ASSERT_EQ(hist.size(), 3u) << "history of a from revision 2";
  EXPECT_EQ(hist[0].kv().value(), "1");
  EXPECT_EQ(hist[0].kv().mod_revision(), 2);
  EXPECT_EQ(hist[1].kv().value(), "2");
  EXPECT_EQ(hist[2].kv().value(), "3");
  EXPECT_EQ(hist[2].type(), mvccpb::Event::PUT);
  auto p4 = put(kv.get(), "a", "4");
  auto live = ws.events(wid, 1, 5s);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].kv().value(), "4");
  EXPECT_EQ(live[0].kv().mod_revision(), p4.header().revision());
  EXPECT_EQ(live[0].kv().version(), 4);

  // ---- watch with prefix and prev_kv; cancel ----
  ASSERT_TRUE(ws.create("w/", client::prefix_range_end("w/"), 0, /*prev_kv=*/true, 0));
  auto created2 = ws.next(5s);
  ASSERT_TRUE(created2.has_value());
  ASSERT_TRUE(created2->created());
  const std::int64_t wid2 = created2->watch_id();
  EXPECT_NE(wid2, wid);
  put(kv.get(), "w/x", "1");
  put(kv.get(), "wx", "outside the prefix");
  put(kv.get(), "w/x", "2");
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    epb::DeleteRangeRequest req;
    req.set_key("w/x");
    epb::DeleteRangeResponse resp;
    ASSERT_TRUE(kv->DeleteRange(&ctx, req, &resp).ok());
  }
  auto pev = ws.events(wid2, 3, 5s);
  ASSERT_EQ(pev.size(), 3u);
  EXPECT_EQ(pev[0].type(), mvccpb::Event::PUT);
  EXPECT_FALSE(pev[0].has_prev_kv());
  EXPECT_EQ(pev[1].kv().value(), "2");
  ASSERT_TRUE(pev[1].has_prev_kv());
  EXPECT_EQ(pev[1].prev_kv().value(), "1");
  EXPECT_EQ(pev[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(pev[2].kv().key(), "w/x");
  ASSERT_TRUE(pev[2].has_prev_kv());
  EXPECT_EQ(pev[2].prev_kv().value(), "2");
  ASSERT_TRUE(ws.cancel(wid2));
  bool saw_cancel = false;
  for (int i = 0; i < 10 && !saw_cancel; ++i) {
    auto r = ws.next(5s);
    ASSERT_TRUE(r.has_value()) << "no cancel confirmation";
    if (r->watch_id() == wid2 && r->canceled()) saw_cancel = true;
  }
  EXPECT_TRUE(saw_cancel);
  put(kv.get(), "w/after-cancel", "x");
  EXPECT_TRUE(ws.events(wid2, 1, 1s).empty()) << "event after cancel";

  // ---- compaction ----
  const std::int64_t compact_at = p4.header().revision();
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    epb::CompactionRequest req;
    req.set_revision(compact_at);
    epb::CompactionResponse resp;
    const grpc::Status s = kv->Compact(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  for (std::size_t m = 0; m < c.size(); ++m) {  // every member applied the compaction
    auto mkv = c.kv(m);
    epb::RangeRequest req;
    req.set_key("a");
    req.set_revision(2);
    epb::RangeResponse resp;
    const grpc::Status s = range(mkv.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << c.member(m).name;
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision has been compacted");
  }
  {
    auto at = get(kv.get(), "a", compact_at);  // the compacted revision itself stays readable
    ASSERT_EQ(at.kvs_size(), 1);
    EXPECT_EQ(at.kvs(0).value(), "4");
  }
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 5s);
    epb::CompactionRequest req;
    req.set_revision(compact_at - 1);
    epb::CompactionResponse resp;
    const grpc::Status s = kv->Compact(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << "compacting below the last";
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision has been compacted");
  }
  {
    WatchSession cw(wstub.get());
    ASSERT_TRUE(cw.create("a", "", 2));
    bool canceled = false;
    for (int i = 0; i < 5 && !canceled; ++i) {
      auto r = cw.next(5s);
      ASSERT_TRUE(r.has_value()) << "watch at a compacted revision: no answer";
      EXPECT_EQ(r->events_size(), 0);
      if (r->canceled()) {
        canceled = true;
        EXPECT_EQ(r->compact_revision(), compact_at);
      }
    }
    EXPECT_TRUE(canceled) << "watch at a compacted revision must be canceled";
  }
  {
    // etcd serves a watch that starts exactly at the compacted revision.
    WatchSession cw(wstub.get());
    ASSERT_TRUE(cw.create("a", "", compact_at));
    auto r = cw.next(5s);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->created());
    EXPECT_FALSE(r->canceled()) << "start_revision == compact revision: " << r->cancel_reason();
    auto next = cw.next(5s);
    ASSERT_TRUE(next.has_value()) << "no event from the compacted revision";
    EXPECT_FALSE(next->canceled())
        << "watch from the compacted revision itself canceled: " << next->DebugString();
    ASSERT_EQ(next->events_size(), 1);
    EXPECT_EQ(next->events(0).kv().value(), "4");
    EXPECT_EQ(next->events(0).kv().mod_revision(), compact_at);
  }

  // ---- MemberList and Status ----
  bool members_ok = false;
  epb::MemberListResponse ml;
  for (int attempt = 0; attempt < 100 && !members_ok; ++attempt) {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 2s);
    ml.Clear();
    ASSERT_TRUE(c.cluster(1)->MemberList(&ctx, epb::MemberListRequest{}, &ml).ok());
    std::size_t good = 0;
    for (const auto& m : ml.members()) {
      auto i = c.index_of(m.id());
      if (i && m.name() == c.member(*i).name && m.clienturls_size() == 1 &&
          m.clienturls(0) == "http://" + c.member(*i).client_address() && m.peerurls_size() == 1 &&
          m.peerurls(0) == "http://" + c.member(*i).peer_address() && !m.islearner()) {
        ++good;
      }
    }
    members_ok = ml.members_size() == 3 && good == 3;
    if (!members_ok) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(members_ok) << "MemberList: " << ml.DebugString();

  std::uint64_t seen_leader = 0;
  for (std::size_t m = 0; m < c.size(); ++m) {
    auto st = c.status(m, 2s);
    ASSERT_TRUE(st.has_value()) << c.member(m).name;
    EXPECT_FALSE(st->version().empty());
    EXPECT_EQ(st->header().member_id(), c.member(m).id);
    EXPECT_EQ(st->header().cluster_id(), p1.header().cluster_id());
    EXPECT_GT(st->raftindex(), 0u);
    EXPECT_GT(st->raftterm(), 0u);
    EXPECT_GT(st->dbsize(), 0);
    EXPECT_TRUE(st->errors().empty());
    EXPECT_EQ(st->leader(), c.member(*leader).id) << c.member(m).name;
    seen_leader = st->leader();
  }
  EXPECT_EQ(seen_leader, c.member(*leader).id);
}

TEST_F(SemanticsTest, FollowerForwardsWritesAndServesLinearizableReads) {
  Cluster c;
  c.start_all();
  const auto leader = c.wait_leader(15s);
  ASSERT_TRUE(leader.has_value());
  std::vector<std::size_t> followers;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (i != *leader) followers.push_back(i);
  }
  ASSERT_EQ(followers.size(), 2u);
  auto f1 = c.kv(followers[0]);
  auto f2 = c.kv(followers[1]);
  const double forwarded_before = metric_value(c.metrics(followers[0]), "ringwire_forwarded_total");
  for (int i = 0; i < 100; ++i) {
    const std::string k = "fk" + std::to_string(i % 10);
    const std::string v = "v" + std::to_string(i);
    auto* writer = (i % 2 == 0) ? f1.get() : f2.get();
    auto* reader = (i % 2 == 0) ? f2.get() : f1.get();
    auto p = put(writer, k, v);
    ASSERT_GT(p.header().revision(), 1);
    // Linearizable read on the other follower, right after the ack: must see the write.
    auto g = get(reader, k);
    ASSERT_EQ(g.kvs_size(), 1) << "iteration " << i;
    ASSERT_EQ(g.kvs(0).value(), v) << "stale linearizable read on a follower, iteration " << i;
    ASSERT_GE(g.header().revision(), p.header().revision());
    ASSERT_EQ(g.kvs(0).mod_revision(), p.header().revision());
  }
  const double forwarded_after = metric_value(c.metrics(followers[0]), "ringwire_forwarded_total");
  EXPECT_GE(forwarded_after - forwarded_before, 50) << "writes to a follower are forwarded";
  // Txn through a follower too.
  {
    epb::TxnRequest t;
    add_compare(&t, "fk0", epb::Compare::VALUE, epb::Compare::EQUAL)->set_value("v90");
    add_put(t.mutable_success(), "fk0", "txn");
    EXPECT_TRUE(txn(f1.get(), t).succeeded());
    EXPECT_EQ(get(f2.get(), "fk0").kvs(0).value(), "txn");
  }
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
