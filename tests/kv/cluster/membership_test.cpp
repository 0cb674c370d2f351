// Membership changes through the etcd Cluster API: a member added with MemberAdd and started
// with --initial-cluster-state existing catches up from the log, publishes its name and client
// address, serves reads and forwards writes; MemberRemove takes it out again.
#include <map>

#include "cluster_fixture.hpp"

namespace ringwire::kv::cluster_test {
namespace {

using namespace std::chrono_literals;

std::int64_t put_keys(Cluster& c, const std::vector<std::size_t>& via, const std::string& prefix,
                      int n, std::map<std::string, std::string>* expected) {
  auto cl = c.client(via, 5s);
  std::int64_t rev = 0;
  for (int i = 0; i < n; ++i) {
    const std::string k = prefix + std::to_string(i);
    const std::string v = "v" + std::to_string(i);
    auto r = cl->put(k, v);
    EXPECT_TRUE(r.has_value()) << k << ": " << r.status().to_string();
    if (!r) continue;
    rev = std::max(rev, r->header.revision);
    (*expected)[k] = v;
  }
  return rev;
}

std::optional<epb::MemberListResponse> members(Cluster& c, std::size_t i) {
  grpc::ClientContext ctx;
  Cluster::set_deadline(ctx, 2s);
  epb::MemberListResponse resp;
  if (!c.cluster(i)->MemberList(&ctx, epb::MemberListRequest{}, &resp).ok()) return std::nullopt;
  return resp;
}

TEST(MembershipTest, AddedMemberJoinsCatchesUpAndIsRemoved) {
  ClusterOptions o;
  o.size = 4;
  o.founding = 3;
  Cluster c(o);
  for (std::size_t i = 0; i < 3; ++i)
    c.start(i);
  for (std::size_t i = 0; i < 3; ++i)
    ASSERT_TRUE(c.wait_serving(i, 20s));
  const auto leader = c.wait_leader(15s, {3});
  ASSERT_TRUE(leader.has_value());

  std::map<std::string, std::string> expected;
  put_keys(c, {0, 1, 2}, "before/", 100, &expected);

  // Add n4 through a follower (the request is forwarded to the leader).
  const std::size_t via = (*leader + 1) % 3;
  epb::MemberAddRequest add;
  add.add_peerurls("http://" + c.member(3).peer_address());
  epb::MemberAddResponse added;
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 10s);
    const grpc::Status s = c.cluster(via)->MemberAdd(&ctx, add, &added);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(added.member().id(), c.member(3).id);
  EXPECT_EQ(added.members_size(), 4);
  {  // the same peer address twice is refused
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 10s);
    epb::MemberAddResponse again;
    EXPECT_FALSE(c.cluster(*leader)->MemberAdd(&ctx, add, &again).ok());
  }

  c.start(3, {"--initial-cluster-state", "existing"});
  ASSERT_TRUE(c.wait_serving(3, 20s));
  const std::int64_t rev = put_keys(c, {0, 1, 2}, "after-add/", 50, &expected);
  ASSERT_TRUE(c.wait_revision({3}, rev, 20s)) << "the new member did not catch up";
  for (const std::string prefix : {"before/", "after-add/"}) {
    auto d = c.local_dump(3, prefix);
    ASSERT_TRUE(d.has_value());
    std::size_t match = 0;
    for (const auto& [k, v] : *d)
      match += expected.count(k) != 0 && expected[k] == v;
    EXPECT_EQ(match, prefix == "before/" ? 100u : 50u) << prefix;
  }

  // It published its name and client address; every member lists it the same way.
  bool listed = false;
  for (int attempt = 0; attempt < 100 && !listed; ++attempt) {
    auto ml = members(c, *leader);
    if (ml) {
      for (const auto& m : ml->members()) {
        listed =
            listed || (m.id() == c.member(3).id && m.name() == "n4" && m.clienturls_size() == 1 &&
                       m.clienturls(0) == "http://" + c.member(3).client_address());
      }
    }
    if (!listed) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(listed) << "n4 is not listed with its name and client URL";

  // Writes through the new member are forwarded and applied everywhere.
  std::map<std::string, std::string> via_new;
  const std::int64_t rev2 = put_keys(c, {3}, "via-n4/", 20, &via_new);
  ASSERT_TRUE(c.wait_revision({0, 1, 2}, rev2, 20s));
  auto d = c.local_dump(*leader, "via-n4/");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, via_new);

  // Remove it again.
  epb::MemberRemoveRequest rm;
  rm.set_id(c.member(3).id);
  epb::MemberRemoveResponse removed;
  {
    grpc::ClientContext ctx;
    Cluster::set_deadline(ctx, 10s);
    const grpc::Status s = c.cluster(*leader)->MemberRemove(&ctx, rm, &removed);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(removed.members_size(), 3);
  for (const auto& m : removed.members())
    EXPECT_NE(m.id(), c.member(3).id);
  // The three remaining members still commit writes.
  std::map<std::string, std::string> after;
  const std::int64_t rev3 = put_keys(c, {0, 1, 2}, "after-remove/", 20, &after);
  EXPECT_TRUE(c.wait_revision({0, 1, 2}, rev3, 20s));
}

}  // namespace
}  // namespace ringwire::kv::cluster_test
