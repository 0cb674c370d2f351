// kv_cache_probe: a reader process for the cache cluster tests. Reads keys PREFIX0..PREFIX(N-1)
// through the host's kv_cache (ringwire::kv::client::ReadThrough) in a loop for --duration-ms,
// then keeps reading until every key read through the cache equals a linearizable read
// (convergence, bounded by --converge-ms).
//
// It records what it saw as runs: one line per (key, mod_revision) stretch of consecutive
// reads of that key, "key mod_revision first_ns last_ns hits" (CLOCK_MONOTONIC, the clock
// the test's writer uses too), so the test can check staleness against the writes' ack times.
// It checks per-key monotonicity of cache hits itself (a later hit never returns an older
// mod_revision).
// Prints one JSON object: counts per outcome, hits per 250 ms window, the slowest get,
// monotonicity violations, converged or not. Exit 0, or 3 if it saw a violation or did not
// converge, 2 on bad options.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/kv/client/read_through.hpp"

namespace {

struct Run {
  std::int64_t mod = -1;
  std::uint64_t first = 0, last = 0, hits = 0;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace ringwire;
  std::string cache, prefix = "ck", out;
  std::vector<std::string> endpoints;
  int keys = 64;
  int duration_ms = 3000, converge_ms = 5000;
  double staleness_ms = 100;
  CLI::App app{"kv_cache_probe: cache reader for the cluster tests"};
  app.add_option("--cache", cache)->required();
  app.add_option("--endpoints", endpoints)->required()->delimiter(',');
  app.add_option("--keys", keys)->check(CLI::Range(1, 100000));
  app.add_option("--prefix", prefix);
  app.add_option("--duration-ms", duration_ms);
  app.add_option("--converge-ms", converge_ms);
  app.add_option("--max-staleness-ms", staleness_ms);
  app.add_option("--out", out, "runs file")->required();
  CLI11_PARSE(app, argc, argv);

  kv::client::Options co;
  co.endpoints = endpoints;
  co.timeout = std::chrono::milliseconds(1000);
  auto client = kv::client::Client::create(co);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.status().message().c_str());
    return 2;
  }
  kv::cache::ReaderOptions ro;
  ro.reattach_interval = std::chrono::milliseconds(20);
  kv::client::ReadThrough rt(**client, cache, ro);
  kv::client::Freshness fresh;
  fresh.max_staleness = std::chrono::nanoseconds(static_cast<long long>(staleness_ms * 1e6));

  std::ofstream runs(out);
  std::vector<Run> cur(static_cast<std::size_t>(keys));
  std::vector<std::int64_t> last_hit(static_cast<std::size_t>(keys), 0);
  auto flush = [&](int k) {
    Run& r = cur[static_cast<std::size_t>(k)];
    if (r.mod >= 0)
      runs << k << ' ' << r.mod << ' ' << r.first << ' ' << r.last << ' ' << r.hits << '\n';
  };
  std::uint64_t outcomes[6] = {}, errors = 0, violations = 0, reads = 0, slowest = 0;
  std::vector<std::uint64_t> windows;
  std::mt19937_64 rng(static_cast<std::uint64_t>(::getpid()));
  const std::uint64_t t0 = core::now_ns();
  const std::uint64_t end = t0 + static_cast<std::uint64_t>(duration_ms) * 1'000'000;
  std::string first_violation;

  auto read = [&](int k) -> std::optional<kv::client::ReadThroughResult> {
    const std::string key = prefix + std::to_string(k);
    const std::uint64_t start = core::now_ns();
    auto r = rt.get(key, fresh);
    const std::uint64_t done = core::now_ns();
    slowest = std::max(slowest, done - start);
    ++reads;
    if (!r) {
      ++errors;
      return std::nullopt;
    }
    ++outcomes[static_cast<int>(r->outcome)];
    if (r->from_cache) {
      const std::size_t w = (start - t0) / 250'000'000;
      if (windows.size() <= w) windows.resize(w + 1, 0);
      ++windows[w];
    }
    const std::int64_t mod = r->result.kvs.empty() ? 0 : r->result.kvs.front().mod_revision;
    // Cache hits of one key never go back in time. (A hit may be older than an RPC read
    // just before it, within the staleness bound; that is allowed, so RPC reads are not
    // part of this check. The test checks every read against the bound.)
    if (r->from_cache) {
      std::int64_t& last = last_hit[static_cast<std::size_t>(k)];
      if (mod < last && violations++ == 0)
        first_violation = key + ": cache hit at mod_revision " + std::to_string(mod) +
                          " after a hit at " + std::to_string(last);
      if (mod > last) last = mod;
    }
    Run& run = cur[static_cast<std::size_t>(k)];
    if (mod != run.mod) {
      flush(k);
      run = Run{mod, start, start, 0};
    }
    run.last = start;
    if (r->from_cache) ++run.hits;
    return std::move(*r);
  };

  while (core::now_ns() < end)
    read(static_cast<int>(rng() % static_cast<std::uint64_t>(keys)));

  // Convergence: every key's cached read equals its linearizable read.
  bool converged = false;
  const std::uint64_t converge_end =
      core::now_ns() + static_cast<std::uint64_t>(converge_ms) * 1'000'000;
  std::uint64_t converge_ns = 0;
  while (!converged && core::now_ns() < converge_end) {
    converged = true;
    for (int k = 0; k < keys && converged; ++k) {
      auto lin = (*client)->get(prefix + std::to_string(k));
      auto c = read(k);
      if (!lin || !c || !c->from_cache) {
        converged = false;
        break;
      }
      const std::int64_t want = lin->kvs.empty() ? 0 : lin->kvs.front().mod_revision;
      const std::int64_t got = c->result.kvs.empty() ? 0 : c->result.kvs.front().mod_revision;
      if (got != want) converged = false;
    }
    if (!converged) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  converge_ns = core::now_ns() - end;
  for (int k = 0; k < keys; ++k)
    flush(k);
  runs.close();

  nlohmann::json j = {{"reads", reads},
                      {"errors", errors},
                      {"hit", outcomes[0]},
                      {"miss", outcomes[1]},
                      {"too_big", outcomes[2]},
                      {"stale", outcomes[3]},
                      {"busy", outcomes[4]},
                      {"unavailable", outcomes[5]},
                      {"slowest_get_us", slowest / 1000},
                      {"violations", violations},
                      {"first_violation", first_violation},
                      {"converged", converged},
                      {"converge_ms", converge_ns / 1'000'000},
                      {"hit_windows_250ms", windows}};
  std::printf("%s\n", j.dump().c_str());
  return violations == 0 && converged ? 0 : 3;
}
