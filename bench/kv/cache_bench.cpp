// kv_cache_bench: how fast a process on the host reads a key from the kv_cache segment.
//
//   kv_cache_bench run --endpoints E --cache NAME [--readers 1] [--api raw|client] ...
//     puts --keys keys through the cluster, reads them through the cache until every one is a
//     hit (the agent fills on misses), then starts --readers reader processes (this binary,
//     `reader` subcommand) that begin at the same instant, each reading random keys for
//     --seconds (throughput) and then timing --samples single reads (latency). Every hit is
//     verified against the value that was put; a mismatch is exit 3.
//   kv_cache_bench floor
//     the one-atomic ping-pong between two threads: the cross-core round trip of this machine
//     in this run, the floor every cross-core figure is quoted against.
//
// --api raw times CacheReader::get (the shared-memory read, staleness check included);
// --api client times kv::client::ReadThrough::get_into, what an application calls (the
// answer as a GetResult, in a result object reused across reads).
//
// Latency: each sample is rdtsc-timed around one read (lfence-serialised); the TSC is
// calibrated against CLOCK_MONOTONIC during the run, and the cost of the empty timed region
// is reported beside the figures (it is included in them, not subtracted).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <x86intrin.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringwire/core/clock.hpp"
#include "ringwire/kv/cache/cache_reader.hpp"
#include "ringwire/kv/client/read_through.hpp"

namespace {

using namespace ringwire;
using nlohmann::json;

extern "C" char** environ;

struct KeyArgs {
  std::uint32_t keys = 1000;
  std::uint32_t key_size = 16;
  std::uint32_t value_size = 100;
};

std::uint64_t xorshift(std::uint64_t& x) noexcept {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

std::string key_of(const KeyArgs& a, std::uint32_t i) {
  std::string d = std::to_string(i);
  std::string k = "cb/";
  k.append(a.key_size > k.size() + d.size() ? a.key_size - k.size() - d.size() : 0, '0');
  k += d;
  return k;
}

// Different for every key, so a hit that returned another key's bytes fails verification.
std::string value_of(const KeyArgs& a, std::uint32_t i) {
  std::string v(a.value_size, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
  for (auto& c : v)
    c = static_cast<char>('!' + xorshift(x) % 90);
  return v;
}

std::uint64_t tsc() noexcept {
  _mm_lfence();
  const std::uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

std::uint64_t percentile(std::vector<std::uint64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// One read through the chosen API; true on a verified hit. Sets *bad on a wrong value.
struct ReaderApi {
  ReaderApi(const std::vector<std::string>& k, const std::vector<std::string>& v)
      : keys(k), values(v) {}
  const std::vector<std::string>& keys;
  const std::vector<std::string>& values;
  kv::cache::CacheReader* raw = nullptr;
  kv::client::ReadThrough* client = nullptr;
  kv::cache::CachedEntry entry;
  kv::client::ReadThroughResult result;  // reused: get_into's allocation-free form
  std::uint64_t hits = 0, other = 0, bad = 0, rpc_errors = 0;

  void read(std::uint32_t k) {
    if (raw != nullptr) {
      if (raw->get(keys[k], entry, std::chrono::milliseconds(100)) == kv::cache::ReadOutcome::hit) {
        ++hits;
        if (entry.value != values[k] || entry.mod_revision <= 0) ++bad;
      } else {
        ++other;
      }
      return;
    }
    if (!client->get_into(keys[k], result)) {
      ++rpc_errors;
      return;
    }
    if (result.from_cache) {
      ++hits;
    } else {
      ++other;
    }
    if (result.result.kvs.size() != 1 || result.result.kvs[0].value != values[k]) ++bad;
  }
};

int reader_main(const KeyArgs& a, const std::string& cache, const std::string& api,
                const std::vector<std::string>& endpoints, std::uint64_t start_ns, double seconds,
                std::uint32_t samples) {
  std::vector<std::string> keys, values;
  for (std::uint32_t i = 0; i < a.keys; ++i) {
    keys.push_back(key_of(a, i));
    values.push_back(value_of(a, i));
  }
  // Random key order, precomputed so the loop costs no RNG.
  std::vector<std::uint32_t> order(1u << 16);
  std::uint64_t x = 0x2545F4914F6CDD1Dull ^ static_cast<std::uint64_t>(::getpid());
  for (auto& o : order)
    o = static_cast<std::uint32_t>(xorshift(x) % a.keys);
  std::optional<kv::cache::CacheReader> raw;  // --api raw; the client API has its own
  std::unique_ptr<kv::client::Client> rpc;
  std::unique_ptr<kv::client::ReadThrough> rt;
  ReaderApi r(keys, values);
  if (api == "client") {
    kv::client::Options co;
    co.endpoints = endpoints;
    auto c = kv::client::Client::create(co);
    if (!c) {
      std::fprintf(stderr, "kv_cache_bench: %s\n", c.status().message().c_str());
      return 2;
    }
    rpc = std::move(c).value();
    rt = std::make_unique<kv::client::ReadThrough>(*rpc, cache);
    r.client = rt.get();
  } else {
    raw.emplace(cache);
    r.raw = &*raw;
  }
  const kv::cache::CacheReader& reader = raw ? *raw : rt->cache();
  if (!reader.attached()) {
    std::fprintf(stderr, "kv_cache_bench: cannot attach cache %s: %s\n", cache.c_str(),
                 reader.attach_error().c_str());
    return 2;
  }
  for (std::uint32_t i = 0; i < a.keys; ++i)
    r.read(i);  // warm this process's caches
  r.hits = r.other = r.bad = r.rpc_errors = 0;

  while (core::now_ns() < start_ns)
    core::cpu_relax();
  // Throughput: reads until the time is up, the clock looked at every 1024 reads.
  const std::uint64_t t0 = core::now_ns();
  const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
  std::uint64_t n = 0, t1 = t0;
  std::size_t pos = 0;
  while (t1 < end) {
    for (int i = 0; i < 1024; ++i)
      r.read(order[pos++ & (order.size() - 1)]);
    n += 1024;
    t1 = core::now_ns();
  }
  const std::uint64_t tp_hits = r.hits, tp_other = r.other;

  // Latency: the TSC calibrated over the sampling itself.
  std::vector<std::uint64_t> lat(samples), empty(samples);
  const std::uint64_t c0 = tsc(), w0 = core::now_ns();
  for (std::uint32_t i = 0; i < samples; ++i) {
    const std::uint64_t s = tsc();
    const std::uint64_t e = tsc();
    empty[i] = e - s;
  }
  for (std::uint32_t i = 0; i < samples; ++i) {
    const std::uint32_t k = order[pos++ & (order.size() - 1)];
    const std::uint64_t s = tsc();
    r.read(k);
    const std::uint64_t e = tsc();
    lat[i] = e - s;
  }
  const std::uint64_t c1 = tsc(), w1 = core::now_ns();
  const double ns_per_tick = static_cast<double>(w1 - w0) / static_cast<double>(c1 - c0);
  auto ns = [&](std::vector<std::uint64_t>& v, double p) {
    return static_cast<double>(percentile(v, p)) * ns_per_tick;
  };
  json j;
  j["pid"] = ::getpid();
  j["api"] = api;
  j["reads"] = n;
  j["seconds"] = static_cast<double>(t1 - t0) / 1e9;
  j["reads_per_sec"] = static_cast<double>(n) * 1e9 / static_cast<double>(t1 - t0);
  j["throughput_hits"] = tp_hits;
  j["throughput_non_hits"] = tp_other;
  j["samples"] = samples;
  j["p50_ns"] = ns(lat, 0.50);
  j["p99_ns"] = ns(lat, 0.99);
  j["p999_ns"] = ns(lat, 0.999);
  j["max_ns"] = ns(lat, 1.0);
  j["timer_p50_ns"] = ns(empty, 0.50);
  j["hits"] = r.hits;
  j["non_hits"] = r.other;
  j["verify_errors"] = r.bad;
  j["rpc_errors"] = r.rpc_errors;
  std::printf("%s\n", j.dump().c_str());
  return r.bad != 0 ? 3 : (r.rpc_errors != 0 ? 2 : 0);
}

// Puts the keys, then reads them through the cache until all hit (fills are asynchronous).
int prepare(const KeyArgs& a, const std::string& cache, const std::vector<std::string>& endpoints) {
  kv::client::Options co;
  co.endpoints = endpoints;
  auto c = kv::client::Client::create(co);
  if (!c) {
    std::fprintf(stderr, "kv_cache_bench: %s\n", c.status().message().c_str());
    return 2;
  }
  for (std::uint32_t i = 0; i < a.keys; ++i) {
    auto p = (*c)->put(key_of(a, i), value_of(a, i));
    if (!p) {
      std::fprintf(stderr, "kv_cache_bench: put: %s\n", p.status().message().c_str());
      return 2;
    }
  }
  kv::cache::CacheReader reader(cache);
  kv::cache::CachedEntry e;
  const std::uint64_t deadline = core::now_ns() + 20'000'000'000ull;
  for (;;) {
    std::uint32_t hits = 0;
    for (std::uint32_t i = 0; i < a.keys; ++i) {
      if (reader.get(key_of(a, i), e, std::chrono::milliseconds(100)) ==
          kv::cache::ReadOutcome::hit) {
        if (e.value != value_of(a, i)) {
          std::fprintf(stderr, "kv_cache_bench: cached value of key %u is wrong\n", i);
          return 3;
        }
        ++hits;
      }
    }
    if (hits == a.keys) return 0;
    if (core::now_ns() > deadline) {
      std::fprintf(stderr, "kv_cache_bench: only %u of %u keys cached after 20 s (%s)\n", hits,
                   a.keys, reader.attach_error().c_str());
      return 2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int run_main(const KeyArgs& a, const std::string& cache, const std::string& api,
             const std::vector<std::string>& endpoints, unsigned readers, double seconds,
             std::uint32_t samples, bool as_json) {
  if (int rc = prepare(a, cache, endpoints); rc != 0) return rc;
  const std::uint64_t start = core::now_ns() + 500'000'000ull;  // time for every reader to map
  std::string eps;
  for (const auto& e : endpoints)
    eps += (eps.empty() ? "" : ",") + e;
  struct Child {
    pid_t pid;
    int fd;
  };
  std::vector<Child> kids;
  for (unsigned i = 0; i < readers; ++i) {
    int p[2];
    if (::pipe(p) != 0) return 2;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    std::vector<std::string> args = {"kv_cache_bench", "reader",
                                     "--cache",        cache,
                                     "--api",          api,
                                     "--endpoints",    eps,
                                     "--keys",         std::to_string(a.keys),
                                     "--key-size",     std::to_string(a.key_size),
                                     "--value-size",   std::to_string(a.value_size),
                                     "--start-ns",     std::to_string(start),
                                     "--seconds",      std::to_string(seconds),
                                     "--samples",      std::to_string(samples)};
    std::vector<char*> argv;
    for (auto& s : args)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    if (rc != 0) {
      std::fprintf(stderr, "kv_cache_bench: spawn: %s\n", std::strerror(rc));
      return 2;
    }
    kids.push_back({pid, p[0]});
  }
  json out;
  out["api"] = api;
  out["readers"] = readers;
  out["keys"] = a.keys;
  out["key_size"] = a.key_size;
  out["value_size"] = a.value_size;
  out["per_reader"] = json::array();
  int worst = 0;
  double total = 0;
  for (auto& k : kids) {
    std::string text;
    char buf[4096];
    ssize_t got;
    while ((got = ::read(k.fd, buf, sizeof buf)) > 0)
      text.append(buf, static_cast<size_t>(got));
    ::close(k.fd);
    int status = 0;
    ::waitpid(k.pid, &status, 0);
    const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 2;
    worst = std::max(worst, rc);
    json r = json::parse(text, nullptr, false);
    if (r.is_discarded()) {
      std::fprintf(stderr, "kv_cache_bench: reader %d printed no result (exit %d)\n", k.pid, rc);
      worst = std::max(worst, 2);
      continue;
    }
    total += r.value("reads_per_sec", 0.0);
    out["per_reader"].push_back(r);
  }
  out["total_reads_per_sec"] = total;
  if (as_json) {
    std::printf("%s\n", out.dump().c_str());
  } else {
    for (const auto& r : out["per_reader"])
      std::printf(
          "reader %d (%s): %.2f M reads/s, p50 %.0f ns, p99 %.0f ns (timer %.0f ns), "
          "%" PRIu64 " hits, %" PRIu64 " non-hits, %" PRIu64 " verify errors\n",
          r["pid"].get<int>(), api.c_str(), r["reads_per_sec"].get<double>() / 1e6,
          r["p50_ns"].get<double>(), r["p99_ns"].get<double>(), r["timer_p50_ns"].get<double>(),
          r["hits"].get<std::uint64_t>(), r["non_hits"].get<std::uint64_t>(),
          r["verify_errors"].get<std::uint64_t>());
    std::printf("total: %.2f M reads/s over %u reader process(es)\n", total / 1e6, readers);
  }
  return worst;
}

int floor_main(std::uint64_t round_trips, bool as_json) {
  alignas(128) std::atomic<std::uint64_t> ball{0};
  std::thread other([&] {
    for (std::uint64_t i = 1; i <= round_trips; ++i) {
      while (ball.load(std::memory_order_acquire) != 2 * i - 1)
        core::cpu_relax();
      ball.store(2 * i, std::memory_order_release);
    }
  });
  const std::uint64_t t0 = core::now_ns();
  for (std::uint64_t i = 1; i <= round_trips; ++i) {
    ball.store(2 * i - 1, std::memory_order_release);
    while (ball.load(std::memory_order_acquire) != 2 * i)
      core::cpu_relax();
  }
  const std::uint64_t t1 = core::now_ns();
  other.join();
  const double rt = static_cast<double>(t1 - t0) / static_cast<double>(round_trips);
  if (as_json) {
    std::printf("{\"round_trips\":%" PRIu64 ",\"round_trip_ns\":%.1f}\n", round_trips, rt);
  } else {
    std::printf("one-atomic ping-pong: %.1f ns per round trip (%" PRIu64 " round trips)\n", rt,
                round_trips);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kv_cache_bench: reads from the host's kv_cache segment (see docs/benchmarks.md)"};
  app.require_subcommand(1);
  app.fallthrough();  // --json may follow the subcommand
  KeyArgs a;
  std::string cache, api = "raw";
  std::vector<std::string> endpoints{"127.0.0.1:9001"};
  unsigned readers = 1;
  double seconds = 2;
  std::uint32_t samples = 200000;
  std::uint64_t start_ns = 0, round_trips = 1'000'000;
  bool as_json = false;
  app.add_flag("--json", as_json, "print one JSON object");
  auto add_common = [&](CLI::App* s) {
    s->add_option("--cache", cache, "kv_cache segment name")->required();
    s->add_option("--endpoints", endpoints, "cluster client endpoints")->delimiter(',');
    s->add_option("--api", api, "raw (CacheReader) or client (ReadThrough)")
        ->check(CLI::IsMember({"raw", "client"}));
    s->add_option("--keys", a.keys, "distinct keys")->check(CLI::Range(1u, 1000000u));
    s->add_option("--key-size", a.key_size, "key bytes")->check(CLI::Range(8u, 1024u));
    s->add_option("--value-size", a.value_size, "value bytes")->check(CLI::Range(1u, 1u << 20));
    s->add_option("--seconds", seconds, "throughput phase per reader")
        ->check(CLI::Range(0.05, 60.0));
    s->add_option("--samples", samples, "timed single reads per reader")
        ->check(CLI::Range(1000u, 10000000u));
  };
  auto* run = app.add_subcommand("run", "prepare the keys, run reader processes, report");
  add_common(run);
  run->add_option("--readers", readers, "reader processes")->check(CLI::Range(1u, 16u));
  auto* reader = app.add_subcommand("reader", "one reader process (started by run)");
  add_common(reader);
  reader->add_option("--start-ns", start_ns, "CLOCK_MONOTONIC instant to begin")->required();
  auto* floor = app.add_subcommand("floor", "one-atomic ping-pong between two threads");
  floor->add_option("--round-trips", round_trips)->check(CLI::Range(1000ull, 100000000ull));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*floor) return floor_main(round_trips, as_json);
  if (*reader) return reader_main(a, cache, api, endpoints, start_ns, seconds, samples);
  return run_main(a, cache, api, endpoints, readers, seconds, samples, as_json);
}
