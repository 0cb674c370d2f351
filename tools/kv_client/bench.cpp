// kv_client bench: a closed-loop load generator. N client threads (one kv::client::Client
// each, so each has its own dedup client id), ops split among them, spread over several gRPC
// connections and over the endpoints. Every response is checked: status OK; put revisions
// strictly increase per client; get returns exactly the value written in the preload phase.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <mutex>
#include <thread>

#include "common.hpp"

namespace ringwire::tools::kv {

namespace {

using Clock = std::chrono::steady_clock;

std::size_t digits(std::uint64_t v) {
  std::size_t d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

struct KeySpace {
  const BenchArgs& a;
  std::string key(std::uint64_t i) const {
    std::string digits_part = std::to_string(i);
    const std::size_t width = a.key_size - a.key_prefix.size();
    return a.key_prefix + std::string(width - digits_part.size(), '0') + digits_part;
  }
  // value_size bytes, different per key and generation, cheap to rebuild and compare.
  std::string value(std::uint64_t i, std::uint64_t gen) const {
    std::string v(a.value_size, 'x');
    char head[48];
    const int n = std::snprintf(head, sizeof head, "v%" PRIu64 ".%" PRIu64 "|", i, gen);
    for (std::size_t j = 0; j < v.size(); ++j) {
      v[j] = j < static_cast<std::size_t>(n) ? head[j] : static_cast<char>('a' + (i * 7 + j) % 26);
    }
    return v;
  }
};

double percentile_us(const std::vector<std::uint64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0.0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted_ns.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted_ns.size());
  return static_cast<double>(sorted_ns[rank - 1]) / 1000.0;
}

struct Shared {
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string first_error;
  void error(const std::string& e) {
    errors.fetch_add(1);
    std::lock_guard<std::mutex> lk(mu);
    if (first_error.empty()) first_error = e;
  }
};

void progress(std::uint64_t done, std::uint64_t total, double secs, bool final_line) {
  const int width = 40;
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int fill = static_cast<int>(frac * width);
  std::fprintf(stderr, "\r[%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " ops %.1f s", fill,
               "========================================", width - fill, "",
               static_cast<int>(frac * 100.0), done, total, secs);
  if (final_line) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace

int run_bench(const Global& g, const BenchArgs& a) {
  if (a.op != "put" && a.op != "get") return fail(g, "bench: operation must be put or get");
  if (a.clients < 1 || a.clients > 1024) return fail(g, "--clients must be 1..1024");
  if (a.ops < 1 || a.ops > 100'000'000) return fail(g, "--ops must be 1..100000000");
  if (a.value_size > (1u << 20)) return fail(g, "--value-size must be at most 1048576");
  if (a.keys < 1 || a.keys > 10'000'000) return fail(g, "--keys must be 1..10000000");
  if (a.key_size > 4096 || a.key_size < a.key_prefix.size() + digits(a.keys - 1)) {
    return fail(g, "--key-size " + std::to_string(a.key_size) + " cannot hold " +
                       std::to_string(a.keys) + " distinct keys (needs at least " +
                       std::to_string(a.key_prefix.size() + digits(a.keys - 1)) +
                       " bytes, at most 4096)");
  }
  const unsigned channels = a.channels == 0 ? std::min(a.clients, 8u) : a.channels;
  if (channels < 1 || channels > 256) return fail(g, "--channels must be 1..256");
  if (a.op == "get" && a.value_size < 1) return fail(g, "bench get needs --value-size >= 1");

  const KeySpace ks{a};
  // One Client per thread, endpoints rotated so threads spread over the cluster.
  std::vector<std::unique_ptr<kc::Client>> clients;
  for (unsigned i = 0; i < a.clients; ++i) {
    kc::Options o = g.client_options();
    std::rotate(o.endpoints.begin(), o.endpoints.begin() + (i % o.endpoints.size()),
                o.endpoints.end());
    o.connection = static_cast<int>(i % channels);
    auto c = kc::Client::create(o);
    if (!c) return fail(g, c.status().message());
    clients.push_back(std::move(c).value());
  }
  // Reachability first: exit 2 (not 3) when there is no server.
  {
    kc::GetOptions go;
    go.count_only = true;
    auto r = clients[0]->get(ks.key(0), go);
    if (!r) return fail(g, r.status().message());
  }

  const bool tty = ::isatty(2) == 1 && !g.json;
  auto run_threads = [&](std::uint64_t total, auto&& body, Shared& sh) {
    std::vector<std::thread> ts;
    const std::uint64_t per = total / a.clients, extra = total % a.clients;
    std::uint64_t begin = 0;
    for (unsigned t = 0; t < a.clients; ++t) {
      const std::uint64_t n = per + (t < extra ? 1 : 0);
      ts.emplace_back([&, t, begin, n] { body(t, begin, n); });
      begin += n;
    }
    const auto t0 = Clock::now();
    for (;;) {
      if (sh.done.load() >= total) break;
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      if (secs > a.max_seconds) {
        sh.stop.store(true);
        break;
      }
      if (tty) progress(sh.done.load(), total, secs, false);
      std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 200 : 20));
    }
    for (auto& th : ts)
      th.join();
    if (tty) {
      progress(sh.done.load(), total, std::chrono::duration<double>(Clock::now() - t0).count(),
               true);
    }
  };

  // Preload for get: every key gets value(i, 0). Not timed; failures are exit 2.
  if (a.op == "get") {
    Shared pre;
    run_threads(
        a.keys,
        [&](unsigned t, std::uint64_t begin, std::uint64_t n) {
          for (std::uint64_t i = begin; i < begin + n && !pre.stop.load(); ++i) {
            auto r = clients[t]->put(ks.key(i), ks.value(i, 0));
            if (!r) pre.error("preload put " + ks.key(i) + ": " + r.status().message());
            pre.done.fetch_add(1);
          }
        },
        pre);
    if (pre.errors.load() > 0) return fail(g, "bench preload failed: " + pre.first_error);
    if (pre.stop.load()) return fail(g, "bench preload did not finish within --max-seconds");
  }

  Shared sh;
  std::vector<std::vector<std::uint64_t>> lat(a.clients);
  const auto start = Clock::now();
  run_threads(
      a.ops,
      [&](unsigned t, std::uint64_t begin, std::uint64_t n) {
        auto& mine = lat[t];
        mine.reserve(n);
        kc::Client& c = *clients[t];
        kc::GetOptions go;
        go.serializable = a.serializable;
        std::int64_t last_rev = 0;
        // Client t walks the key space from its own offset, so threads touch different keys.
        for (std::uint64_t j = 0; j < n && !sh.stop.load(); ++j) {
          const std::uint64_t op = begin + j;
          const std::uint64_t idx = op % a.keys;
          const std::string key = ks.key(idx);
          if (a.op == "put") {
            const std::string value = ks.value(idx, op + 1);
            const auto t0 = Clock::now();
            auto r = c.put(key, value);
            const auto t1 = Clock::now();
            mine.push_back(static_cast<std::uint64_t>((t1 - t0).count()));
            if (!r) {
              sh.error("put " + key + ": " + r.status().message());
            } else if (r->header.revision <= last_rev) {
              sh.error("put " + key + ": revision " + std::to_string(r->header.revision) +
                       " not after " + std::to_string(last_rev));
            } else {
              last_rev = r->header.revision;
            }
          } else {
            const auto t0 = Clock::now();
            auto r = c.get(key, go);
            const auto t1 = Clock::now();
            mine.push_back(static_cast<std::uint64_t>((t1 - t0).count()));
            if (!r) {
              sh.error("get " + key + ": " + r.status().message());
            } else if (r->kvs.size() != 1 || r->kvs[0].key != key ||
                       r->kvs[0].value != ks.value(idx, 0)) {
              sh.error("get " + key + ": wrong answer (" + std::to_string(r->kvs.size()) + " kvs" +
                       (r->kvs.empty() ? "" : ", value '" + r->kvs[0].value + "'") + ")");
            }
          }
          sh.done.fetch_add(1);
        }
      },
      sh);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<std::uint64_t> all;
  all.reserve(a.ops);
  for (auto& v : lat)
    all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  const std::uint64_t done = all.size();
  const double ops_s = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  const double p50 = percentile_us(all, 0.50), p90 = percentile_us(all, 0.90),
               p99 = percentile_us(all, 0.99), p999 = percentile_us(all, 0.999),
               pmax = all.empty() ? 0.0 : static_cast<double>(all.back()) / 1000.0;
  const std::uint64_t errors = sh.errors.load();
  const bool truncated = done < a.ops;

  if (g.json) {
    Json j{{"ok", errors == 0 && !truncated},
           {"op", a.op},
           {"clients", a.clients},
           {"channels", channels},
           {"endpoints", g.servers},
           {"ops", done},
           {"ops_requested", a.ops},
           {"seconds", secs},
           {"ops_per_sec", ops_s},
           {"p50_us", p50},
           {"p90_us", p90},
           {"p99_us", p99},
           {"p999_us", p999},
           {"max_us", pmax},
           {"errors", errors},
           {"key_size", a.key_size},
           {"value_size", a.value_size},
           {"keys", a.keys},
           {"serializable", a.serializable},
           {"truncated", truncated}};
    if (!sh.first_error.empty()) j["first_error"] = sh.first_error;
    j["exit_code"] = errors > 0 ? core::kExitVerifyFailed : truncated ? core::kExitInvalid : 0;
    emit(j);
  } else {
    std::printf("bench %s%s: %" PRIu64 " ops, %u clients, %u channels, %zu endpoint(s), %" PRIu64
                " keys of %zu B, values %zu B\n",
                a.op.c_str(),
                a.op == "get" ? (a.serializable ? " (serializable)" : " (linearizable)") : "", done,
                a.clients, channels, g.servers.size(), a.keys, a.key_size, a.value_size);
    std::printf("time %.3f s, %.1f ops/s\n", secs, ops_s);
    std::printf("latency (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", p50, p90, p99,
                p999, pmax);
    std::printf("errors %" PRIu64 "\n", errors);
    if (errors == 0 && !truncated) std::printf("OK\n");
    std::fflush(stdout);
  }
  if (errors > 0) {
    std::fprintf(stderr, "VERIFY FAILED: %" PRIu64 " of %" PRIu64 " responses wrong; first: %s\n",
                 errors, done, sh.first_error.c_str());
    return core::kExitVerifyFailed;
  }
  if (truncated) {
    std::fprintf(stderr,
                 "ERROR: invalid input or unavailable IPC resource: bench stopped after "
                 "--max-seconds %.3g with %" PRIu64 " of %" PRIu64 " ops\n",
                 a.max_seconds, done, a.ops);
    return core::kExitInvalid;
  }
  return core::kExitOk;
}

}  // namespace ringwire::tools::kv
