// kv_server: one member of a replicated, etcd-compatible key-value store.
#include <signal.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/tool_main.hpp"
#include "ringwire/core/status.hpp"
#include "server/cluster_config.hpp"
#include "server/services.hpp"

namespace {

constexpr const char* kFooter = R"(
Examples:
  kv_server --data-dir /tmp/kv1                    one-member cluster on 127.0.0.1:2379
  kv_server --name n1 --listen 127.0.0.1:9001 --peer-listen 127.0.0.1:9101 \
            --cluster n1=127.0.0.1:9101,n2=127.0.0.1:9102,n3=127.0.0.1:9103 --data-dir DIR

The client API is etcd v3's gRPC API (KV, Watch, Cluster, Maintenance.Status): etcdctl and
etcd client libraries work against --listen. Options may also come from --config FILE (TOML:
name = "n1", listen = "127.0.0.1:9001", ...). SIGINT/SIGTERM stop the member cleanly.

A founding member restarted with an empty data dir must not rejoin as itself (it may have
voted or acknowledged writes it no longer has): start it with --initial-cluster-state existing
and it refuses, telling you to remove and re-add it.

Exit codes: 0 stopped cleanly; 2 invalid options, data dir in use or unusable, cannot listen,
or the member stopped because its disk failed; 3 the WAL or a snapshot is corrupted (the
message names the file and offset).)";

}  // namespace

int main(int argc, char** argv) {
  using ringwire::kv::server::ServerConfig;
  ServerConfig cfg;
  cfg.data_dir.clear();
  std::string cluster;
  std::string state = "new";
  std::string log_level = "info";
  bool json = false;
  bool no_fsync = false;

  CLI::App app{"kv_server: a member of a replicated, etcd-compatible key-value store"};
  app.footer(kFooter);
  app.set_config("--config", "", "read options from a TOML file");
  app.add_option("--name", cfg.name, "member name (unique in the cluster)")->capture_default_str();
  app.add_option("--listen", cfg.listen, "client API address host:port")->capture_default_str();
  app.add_option("--peer-listen", cfg.peer_listen, "Raft/peer address host:port")
      ->capture_default_str();
  app.add_option("--cluster", cluster,
                 "founding members name=host:port,... (peer addresses); default: just this one");
  app.add_option("--data-dir", cfg.data_dir, "where the WAL and snapshots live")->required();
  app.add_option("--initial-cluster-state", state, "new: bootstrap; existing: join a cluster")
      ->check(CLI::IsMember({"new", "existing"}))
      ->capture_default_str();
  app.add_option("--metrics", cfg.metrics_listen, "serve Prometheus /metrics on host:port");
  app.add_option("--tick-ms", cfg.tick_ms, "Raft tick")->capture_default_str();
  app.add_option("--election-ticks", cfg.election_ticks, "election timeout in ticks")
      ->capture_default_str();
  app.add_option("--heartbeat-ticks", cfg.heartbeat_ticks, "heartbeat interval in ticks")
      ->capture_default_str();
  app.add_option("--snapshot-entries", cfg.snapshot_entries,
                 "compact the log every N applied entries (0: never)")
      ->capture_default_str();
  app.add_option("--max-batch", cfg.max_batch, "proposals per Raft append")->capture_default_str();
  app.add_flag("--lease-reads", cfg.lease_reads,
               "serve linearizable reads by leader lease (assumes bounded clock drift)");
  app.add_flag("--no-fsync", no_fsync, "do not fdatasync the WAL (tests and benchmarks only)");
  app.add_flag("--unsafe-local-reads", cfg.unsafe_local_reads,
               "TEST ONLY: serve linearizable reads without ReadIndex (allows stale reads)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object on stdout once serving");
  if (auto rc = ringwire::tools::parse_command_line(app, argc, argv)) return *rc;
  cfg.fsync = !no_fsync;
  cfg.join_existing = state == "existing";

  ringwire::tools::init_stderr_logger("kv_server", cfg.name, log_level);

  auto fail = [](const ringwire::core::Status& s) {
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n",
                 s.message().c_str());
    return ringwire::core::exit_code_for(s.code()) == ringwire::core::kExitVerifyFailed
               ? ringwire::core::kExitVerifyFailed
               : ringwire::core::kExitInvalid;
  };
  if (!cluster.empty()) {
    auto parsed = ringwire::kv::server::parse_cluster(cluster);
    if (!parsed) return fail(parsed.status());
    cfg.cluster = std::move(parsed.value());
  }
  if (auto st = ringwire::kv::server::finalize(cfg); !st) return fail(st);

  // Block the stop signals before any thread starts, so only sigtimedwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = ringwire::kv::server::Server::start(cfg);
  if (!server) return fail(server.status());
  spdlog::info("member {} ({:x}) of cluster {:x} serving clients on {}, peers on {}", cfg.name,
               cfg.self_id, cfg.cluster_id, cfg.listen, cfg.peer_listen);
  if (json) {
    nlohmann::json j = {
        {"name", cfg.name},     {"member_id", cfg.self_id},       {"cluster_id", cfg.cluster_id},
        {"listen", cfg.listen}, {"peer_listen", cfg.peer_listen}, {"data_dir", cfg.data_dir},
        {"status", "serving"}};
    std::cout << j.dump() << std::endl;
  }
  const timespec poll_interval{0, 100'000'000};
  int rc = ringwire::core::kExitOk;
  for (;;) {
    const int sig = sigtimedwait(&stop_signals, nullptr, &poll_interval);
    if (sig > 0) {
      spdlog::info("signal {}: stopping", sig);
      break;
    }
    if (server.value()->failed()) {
      rc = ringwire::core::kExitInvalid;
      break;
    }
  }
  server.value()->shutdown();
  spdlog::info("stopped");
  return rc;
}
