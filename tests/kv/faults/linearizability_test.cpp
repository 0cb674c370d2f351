// The fault harness's checker (tools/kv_faults/linearizability.hpp): it must reject the
// classic bad histories (stale read, lost write, a value never written, impossible CAS) and
// accept good ones, including ops of unknown outcome and long concurrent histories.
#include "linearizability.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <sstream>

namespace ringwire::tools::kv_faults {
namespace {

// Builders: times in arbitrary units, one key "k" unless given.
Op write(std::int64_t t0, std::int64_t t1, std::string v, Outcome out = Outcome::ok,
         std::string key = "k") {
  Op o;
  o.key = std::move(key);
  o.kind = OpKind::write;
  o.outcome = out;
  o.invoke_ns = t0;
  o.complete_ns = t1;
  o.value = std::move(v);
  return o;
}

Op read(std::int64_t t0, std::int64_t t1, std::optional<std::string> v, std::string key = "k") {
  Op o;
  o.key = std::move(key);
  o.kind = OpKind::read;
  o.invoke_ns = t0;
  o.complete_ns = t1;
  o.value = std::move(v);
  return o;
}

Op cas(std::int64_t t0, std::int64_t t1, std::optional<std::string> expected, std::string v,
       bool succeeded, std::optional<std::string> observed = std::nullopt,
       Outcome out = Outcome::ok) {
  Op o;
  o.key = "k";
  o.kind = OpKind::cas;
  o.outcome = out;
  o.invoke_ns = t0;
  o.complete_ns = t1;
  o.expected = std::move(expected);
  o.value = std::move(v);
  o.cas_succeeded = succeeded;
  o.observed = std::move(observed);
  return o;
}

Verdict verdict(const History& h) {
  return check_history(h).verdict;
}

TEST(Linearizability, EmptyAndSequentialHistoriesPass) {
  EXPECT_EQ(verdict({}), Verdict::linearizable);
  EXPECT_EQ(verdict({read(0, 1, std::nullopt)}), Verdict::linearizable);
  EXPECT_EQ(verdict({write(0, 1, "a"), read(2, 3, "a"), write(4, 5, "b"), read(6, 7, "b")}),
            Verdict::linearizable);
}

TEST(Linearizability, StaleReadIsRejected) {
  const History h = {write(0, 10, "a"), write(20, 30, "b"), read(40, 50, "a")};
  const CheckReport r = check_history(h);
  ASSERT_EQ(r.verdict, Verdict::not_linearizable);
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(r.keys[0].stuck_op, 2u);  // the stale read
  // The window holds the stale read and the write it missed, not necessarily the first write.
  const auto& w = r.keys[0].window;
  EXPECT_NE(std::find(w.begin(), w.end(), 2u), w.end());
  EXPECT_NE(std::find(w.begin(), w.end(), 1u), w.end());
}

TEST(Linearizability, LostAcknowledgedWriteIsRejected) {
  EXPECT_EQ(verdict({write(0, 10, "a"), read(20, 30, std::nullopt)}), Verdict::not_linearizable);
  // An acknowledged overwrite that later reads do not see.
  EXPECT_EQ(verdict({write(0, 10, "a"), write(12, 15, "b"), read(20, 30, "a"), read(31, 32, "a")}),
            Verdict::not_linearizable);
}

TEST(Linearizability, ReadOfANeverWrittenValueIsRejected) {
  EXPECT_EQ(verdict({write(0, 10, "a"), read(20, 30, "zzz")}), Verdict::not_linearizable);
  EXPECT_EQ(verdict({read(0, 1, "zzz")}), Verdict::not_linearizable);
}

TEST(Linearizability, ConcurrentReadMaySeeEitherValue) {
  EXPECT_EQ(verdict({write(0, 10, "a"), write(20, 40, "b"), read(25, 35, "a")}),
            Verdict::linearizable);
  EXPECT_EQ(verdict({write(0, 10, "a"), write(20, 40, "b"), read(25, 35, "b")}),
            Verdict::linearizable);
  // Two reads during the write: once one saw the new value a later read cannot see the old one.
  EXPECT_EQ(verdict({write(0, 10, "a"), write(20, 100, "b"), read(25, 35, "b"), read(40, 50, "a")}),
            Verdict::not_linearizable);
  EXPECT_EQ(verdict({write(0, 10, "a"), write(20, 100, "b"), read(25, 35, "a"), read(40, 50, "b")}),
            Verdict::linearizable);
}

TEST(Linearizability, UnknownWritesMayOrMayNotHaveHappened) {
  // Never observed: fine either way.
  EXPECT_EQ(verdict({write(0, 10, "a", Outcome::unknown), read(20, 30, std::nullopt)}),
            Verdict::linearizable);
  // Observed long after its client gave up: it took effect late.
  EXPECT_EQ(verdict({write(0, 10, "a", Outcome::unknown), read(20, 30, std::nullopt),
                     read(500, 510, "a")}),
            Verdict::linearizable);
  // Observed, then not observed, then observed: impossible (values are unique).
  EXPECT_EQ(verdict({write(0, 10, "a", Outcome::unknown), read(20, 30, "a"),
                     read(40, 50, std::nullopt), read(60, 70, "a")}),
            Verdict::not_linearizable);
  // Seen before it was even invoked.
  EXPECT_EQ(verdict({read(0, 10, "a"), write(20, 30, "a", Outcome::unknown)}),
            Verdict::not_linearizable);
  // A chain of unknown ops: the CAS that wrote "y" was seen, so the unknown write of the "x" it
  // expected must have happened too (found by the long-history test below; once a bug).
  EXPECT_EQ(
      verdict({write(0, 1, "a"), write(2, 3, "x", Outcome::unknown),
               cas(4, 5, "x", "y", false, std::nullopt, Outcome::unknown), read(10, 11, "y")}),
      Verdict::linearizable);
  // ... and its effect is then ordered: "x" cannot come back after "y".
  EXPECT_EQ(verdict({write(0, 1, "a"), write(2, 3, "x", Outcome::unknown),
                     cas(4, 5, "x", "y", false, std::nullopt, Outcome::unknown), read(6, 7, "y"),
                     read(8, 9, "x")}),
            Verdict::not_linearizable);
  // A failed write certainly did not happen: reading its value is a violation.
  EXPECT_EQ(verdict({write(0, 10, "a", Outcome::fail), read(20, 30, "a")}),
            Verdict::not_linearizable);
}

TEST(Linearizability, CompareAndSwap) {
  EXPECT_EQ(verdict({write(0, 1, "a"), cas(2, 3, "a", "b", true), read(4, 5, "b")}),
            Verdict::linearizable);
  EXPECT_EQ(verdict({cas(0, 1, std::nullopt, "a", true), read(2, 3, "a")}), Verdict::linearizable);
  // Succeeded although the register held another value.
  EXPECT_EQ(verdict({write(0, 1, "a"), write(2, 3, "c"), cas(4, 5, "a", "b", true)}),
            Verdict::not_linearizable);
  // Failed and reported the current value: consistent only if that is the register's value.
  EXPECT_EQ(verdict({write(0, 1, "a"), cas(2, 3, "x", "b", false, "a")}), Verdict::linearizable);
  EXPECT_EQ(verdict({write(0, 1, "a"), cas(2, 3, "a", "b", false, "a")}),
            Verdict::not_linearizable);
  EXPECT_EQ(verdict({write(0, 1, "a"), write(2, 3, "c"), cas(4, 5, "x", "b", false, "a")}),
            Verdict::not_linearizable);
  // Unknown CAS: may have failed (old value stays) or succeeded (new value seen later).
  EXPECT_EQ(verdict({write(0, 1, "a"), cas(2, 3, "a", "b", false, std::nullopt, Outcome::unknown),
                     read(10, 11, "a")}),
            Verdict::linearizable);
  EXPECT_EQ(verdict({write(0, 1, "a"), cas(2, 3, "a", "b", false, std::nullopt, Outcome::unknown),
                     read(10, 11, "b")}),
            Verdict::linearizable);
  // ... but it cannot have succeeded if its compare could not hold.
  EXPECT_EQ(verdict({write(0, 1, "c"), cas(2, 3, "a", "b", false, std::nullopt, Outcome::unknown),
                     read(10, 11, "b")}),
            Verdict::not_linearizable);
}

TEST(Linearizability, RepeatedValuesUseTheGeneralSearch) {
  // "a" is written twice, so unknown ops stay pending forever (no pruning): still right.
  EXPECT_EQ(verdict({write(0, 1, "a"), write(2, 3, "b"), write(4, 5, "a", Outcome::unknown),
                     read(10, 11, "a"), read(12, 13, "b")}),
            Verdict::not_linearizable);
  EXPECT_EQ(verdict({write(0, 1, "a"), write(2, 3, "b"), write(4, 5, "a", Outcome::unknown),
                     read(10, 11, "b"), read(12, 13, "a")}),
            Verdict::linearizable);
}

TEST(Linearizability, KeysAreCheckedIndependently) {
  const History h = {write(0, 1, "a", Outcome::ok, "x"), write(0, 1, "b", Outcome::ok, "y"),
                     read(2, 3, "a", "x"), read(2, 3, "a", "y")};
  const CheckReport r = check_history(h);
  ASSERT_EQ(r.verdict, Verdict::not_linearizable);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys[0].key, "x");
  EXPECT_EQ(r.keys[0].verdict, Verdict::linearizable);
  EXPECT_EQ(r.keys[1].verdict, Verdict::not_linearizable);
  EXPECT_EQ(r.keys[1].stuck_op, 3u);
}

// A long concurrent history made linearizable by construction: each op takes effect at a
// random point inside its interval, on a real register.
History generate(std::uint64_t seed, int processes, int ops_per_process, double unknown_share) {
  std::mt19937_64 rng(seed);
  struct Pending {
    Op op;
    std::int64_t at;
  };
  std::vector<Pending> all;
  for (int p = 0; p < processes; ++p) {
    std::int64_t t = static_cast<std::int64_t>(rng() % 50);
    for (int i = 0; i < ops_per_process; ++i) {
      Op o;
      o.process = p;
      o.key = "k";
      const auto r = rng() % 10;
      o.kind = r < 4 ? OpKind::read : r < 7 ? OpKind::write : OpKind::cas;
      o.invoke_ns = t;
      const std::int64_t at = t + 1 + static_cast<std::int64_t>(rng() % 100);
      o.complete_ns = at + 1 + static_cast<std::int64_t>(rng() % 100);
      if (o.kind != OpKind::read) o.value = "p" + std::to_string(p) + "-" + std::to_string(i);
      if (o.kind != OpKind::read && std::uniform_real_distribution<>(0, 1)(rng) < unknown_share)
        o.outcome = Outcome::unknown;
      all.push_back({o, at});
      t = o.complete_ns + static_cast<std::int64_t>(rng() % 20);
    }
  }
  std::sort(all.begin(), all.end(), [](const Pending& a, const Pending& b) { return a.at < b.at; });
  std::optional<std::string> reg;
  std::vector<std::optional<std::string>> recent;  // values a CAS may expect
  History h;
  for (auto& [o, at] : all) {
    (void)at;
    switch (o.kind) {
      case OpKind::read:
        o.value = reg;
        break;
      case OpKind::write:
        // An unknown write takes effect or not (coin flip), as after a timeout.
        if (o.outcome == Outcome::ok || rng() % 2 == 0) reg = o.value;
        break;
      case OpKind::cas: {
        o.expected = (rng() % 2 == 0 || recent.empty()) ? reg : recent[rng() % recent.size()];
        const bool holds = o.expected == reg;
        o.cas_succeeded = holds;
        if (!holds) o.observed = reg;
        if (holds && (o.outcome == Outcome::ok || rng() % 2 == 0)) reg = o.value;
        break;
      }
    }
    recent.push_back(reg);
    if (recent.size() > 5) recent.erase(recent.begin());
    h.push_back(o);
  }
  std::sort(h.begin(), h.end(), [](const Op& a, const Op& b) { return a.invoke_ns < b.invoke_ns; });
  return h;
}

TEST(Linearizability, LongConcurrentHistoriesPass) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const History h = generate(seed, 8, 500, 0.1);  // 4,000 ops on one key
    const CheckReport r = check_history(h);
    EXPECT_EQ(r.verdict, Verdict::linearizable) << "seed " << seed;
    ASSERT_EQ(r.keys.size(), 1u);
    std::printf("[ checker ] seed %llu: %zu ops, %zu checked, %llu steps, %llu memo entries\n",
                static_cast<unsigned long long>(seed), r.keys[0].ops, r.keys[0].checked_ops,
                static_cast<unsigned long long>(r.keys[0].steps),
                static_cast<unsigned long long>(r.keys[0].memo_entries));
  }
}

// A soak's key: 100,000 ops. The search recurses once per op (it runs on a big stack).
TEST(Linearizability, AHundredThousandOpsOnOneKey) {
  const History h = generate(11, 8, 12'500, 0.05);
  const CheckReport r = check_history(h);
  EXPECT_EQ(r.verdict, Verdict::linearizable);
  ASSERT_EQ(r.keys.size(), 1u);
  std::printf("[ checker ] %zu ops, %llu steps\n", r.keys[0].ops,
              static_cast<unsigned long long>(r.keys[0].steps));
}

TEST(Linearizability, OneStaleReadInALongHistoryIsFound) {
  int caught = 0;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    History h = generate(seed, 8, 500, 0.1);
    // Make a read in the middle return the value of an acknowledged write that was overwritten
    // (by an acknowledged write) before the read was invoked.
    std::size_t target = h.size();
    std::string stale;
    for (std::size_t i = h.size() / 2; i < h.size() && target == h.size(); ++i) {
      if (h[i].kind != OpKind::read || h[i].outcome != Outcome::ok) continue;
      for (std::size_t w = 0; w < i; ++w) {
        if (h[w].kind != OpKind::write || h[w].outcome != Outcome::ok) continue;
        if (h[w].complete_ns >= h[i].invoke_ns || h[w].value == h[i].value) continue;
        bool overwritten = false;
        for (std::size_t x = w + 1; x < i; ++x) {
          overwritten = overwritten ||
                        (h[x].kind == OpKind::write && h[x].outcome == Outcome::ok &&
                         h[x].invoke_ns > h[w].complete_ns && h[x].complete_ns < h[i].invoke_ns);
        }
        if (overwritten) {
          target = i;
          stale = *h[w].value;
        }
      }
    }
    ASSERT_LT(target, h.size());
    h[target].value = stale;
    const CheckReport r = check_history(h);
    EXPECT_EQ(r.verdict, Verdict::not_linearizable) << "seed " << seed;
    if (r.verdict == Verdict::not_linearizable) {
      ++caught;
      EXPECT_FALSE(r.keys[0].window.empty());
      EXPECT_LT(r.keys[0].window.size(), h.size() / 4) << "window is not small";
    }
  }
  EXPECT_EQ(caught, 5);
}

TEST(Linearizability, ABudgetTooSmallSaysUnknownNotLinearizable) {
  const History h = generate(7, 8, 300, 0.0);
  CheckOptions o;
  o.max_steps_per_key = 10;
  EXPECT_EQ(check_history(h, o).verdict, Verdict::unknown);
}

TEST(History, JsonLinesRoundTrip) {
  const History h = {write(0, 10, "a", Outcome::unknown), read(20, 30, std::nullopt),
                     cas(40, 50, std::nullopt, "b", false, "a")};
  std::stringstream ss;
  write_history(ss, h);
  const History back = read_history(ss);
  ASSERT_EQ(back.size(), h.size());
  EXPECT_EQ(back[0].outcome, Outcome::unknown);
  EXPECT_EQ(back[1].value, std::nullopt);
  EXPECT_EQ(back[2].expected, std::nullopt);
  EXPECT_EQ(back[2].observed, std::optional<std::string>("a"));
  EXPECT_EQ(check_history(back).verdict, check_history(h).verdict);
}

}  // namespace
}  // namespace ringwire::tools::kv_faults
