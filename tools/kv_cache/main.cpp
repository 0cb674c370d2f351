// kv_cache: the per-host agent of the shared-memory read cache (see cache_agent.hpp).
#include <signal.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/tool_main.hpp"
#include "ringwire/core/status.hpp"
#include "ringwire/kv/cache/cache_agent.hpp"
#include "ringwire/kv/cache/cache_reader.hpp"
#include "ringwire/kv/client/client.hpp"

namespace {

constexpr const char* kFooter = R"(
Example:
  kv_cache --cluster 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 --name kv --capacity 100000
  kv_client --server 127.0.0.1:9001 --cache kv get mykey        # reads through the cache
  kv_client stats --cache kv                                     # hit rate, entries, lag

The agent creates the shared-memory segment ringwire.NAME (and ringwire.NAME.fill, where
readers post the keys they missed), follows the cluster's Watch stream and confirms the
table every --heartbeat-ms. Readers serve a hit only while that confirmation is younger than
their staleness bound; when the agent stops or dies they fall back to RPC. A new agent takes
over a dead agent's segment and resumes the Watch from its revision. SIGINT/SIGTERM stop it
cleanly (the segments are removed).

Exit codes: 0 stopped cleanly; 2 invalid options, the cache is served by another live agent,
or shared memory is unavailable.)";

}  // namespace

int main(int argc, char** argv) {
  using namespace ringwire;
  kv::cache::AgentOptions o;
  std::vector<std::string> cluster;
  std::string log_level = "info";
  int heartbeat_ms = 20;
  bool json = false;

  CLI::App app{"kv_cache: keeps a shared-memory read cache of a kv_server cluster coherent"};
  app.footer(kFooter);
  app.add_option("--cluster,--endpoints", cluster, "cluster client addresses host:port,...")
      ->required()
      ->delimiter(',');
  app.add_option("--name", o.cache.name, "cache name (segment ringwire.NAME)")->required();
  app.add_option("--capacity", o.cache.capacity, "most keys cached")->capture_default_str();
  app.add_option("--memory", o.cache.memory, "cap the table at this many bytes (lowers capacity)");
  app.add_option("--key-max", o.cache.key_max, "longest key cached, bytes")->capture_default_str();
  app.add_option("--max-value", o.cache.value_max, "largest value cached, bytes")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", heartbeat_ms, "how often the table is confirmed")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object on stdout once started");
  if (auto rc = tools::parse_command_line(app, argc, argv)) return *rc;
  tools::init_stderr_logger("kv_cache", "kv_cache " + o.cache.name, log_level);

  auto fail = [](const core::Status& s) {
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n",
                 s.message().c_str());
    return core::kExitInvalid;
  };
  auto eps = kv::client::parse_endpoints(cluster);
  if (!eps) return fail(eps.status());
  o.endpoints = *eps;
  o.heartbeat = std::chrono::milliseconds(heartbeat_ms);

  // Block the stop signals before any thread starts, so only sigtimedwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto agent = kv::cache::CacheAgent::create(o);
  if (!agent) return fail(agent.status());
  auto& seg = agent.value()->writer().segment();
  const auto& g = agent.value()->writer().table().geometry();
  spdlog::info("cache '{}' ({} keys, {} slots of {} B, {} MiB){}; cluster {}", o.cache.name,
               g.capacity, g.slots, g.slot_size, seg.payload_size() >> 20,
               agent.value()->writer().took_over() ? ", taken over from a dead agent" : "",
               fmt::join(o.endpoints, ","));
  if (json) {
    nlohmann::json j = {{"name", o.cache.name},
                        {"capacity", g.capacity},
                        {"slots", g.slots},
                        {"key_max", g.key_max},
                        {"value_max", g.value_max},
                        {"bytes", seg.payload_size()},
                        {"took_over", agent.value()->writer().took_over()},
                        {"repaired_slots", agent.value()->writer().repaired_slots()},
                        {"pid", ::getpid()},
                        {"status", "started"}};
    std::cout << j.dump() << std::endl;
  }

  std::atomic<bool> stop{false};
  std::thread signals([&] {
    const timespec poll_interval{0, 100'000'000};
    while (!stop.load()) {
      const int sig = sigtimedwait(&stop_signals, nullptr, &poll_interval);
      if (sig > 0) {
        spdlog::info("signal {}: stopping", sig);
        stop.store(true);
      }
    }
  });
  auto st = agent.value()->run(stop);
  stop.store(true);
  signals.join();
  const auto r = agent.value()->report();
  spdlog::info("stopped at revision {}: {} events, {} fills, {} clears, {} watch sessions",
               r.applied_revision, r.events, r.fills, r.clears, r.sessions);
  agent.value().reset();
  return st ? core::kExitOk : fail(st);
}
