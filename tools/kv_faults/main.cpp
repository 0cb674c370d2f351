// kv_faults: Jepsen-style fault injection against a kv_server cluster. Starts the cluster
// (one network namespace per node), runs concurrent clients while a seeded nemesis kills,
// pauses, partitions and slows nodes, heals everything, reads every key from every node and
// checks the recorded history for linearizability, lost acknowledged writes and convergence.
// See docs/reliability.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/tool_main.hpp"
#include "disks.hpp"
#include "final_checks.hpp"
#include "history.hpp"
#include "linearizability.hpp"
#include "nemesis.hpp"
#include "network.hpp"
#include "nodes.hpp"
#include "proc.hpp"
#include "report.hpp"
#include "ringwire/core/status.hpp"
#include "workload.hpp"

namespace fs = std::filesystem;
namespace core = ringwire::core;
using namespace ringwire::tools::kv_faults;
using namespace std::chrono_literals;
using Json = nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
  g_stop.store(true);
}

constexpr const char* kFooter = R"(
Faults (--faults, comma-separated, or "all" / "none"):
  kill       kill -9 a node (the leader 3 times out of 4) and restart it on its data dir
  pause      SIGSTOP a node (leader preferred), SIGCONT after the hold
  partition  random majority/minority split (blackhole routes in the namespaces)
  isolate    cut the leader off from every other node
  bridge     two halves that cannot talk, one node that sees both
  slow       degrade one node's link: netem delay+loss, or a tbf rate limit when the kernel
             has no netem (this one does not, on the CI machine)
Needs root for network namespaces; without them it falls back to loopback ports with kill
and pause only (no fault-injecting proxy) and says so.

Exit codes: 0 the history is linearizable, no acknowledged write lost, nodes converged;
1 no verdict (the checker ran out of budget, or a node exited by itself); 2 invalid input or
the cluster could not be set up; 3 data verification failed: not linearizable, a lost write,
or nodes that disagree (the history and the smallest failing window are written to --out).)";

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

// Default output dirs (kv_faults.<pid> in the temp dir) of runs that were killed.
void remove_stale_out_dirs() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("kv_faults.", 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + 10, nullptr, 10);
    if (pid > 0 && !pid_alive(static_cast<pid_t>(pid))) fs::remove_all(e.path(), ec);
  }
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

static int run(int argc, char** argv) {
  RunConfig cfg;
  std::string faults = "all";
  std::string check_file;
  std::string kv_server;
  double op_timeout_s = 1.5;
  bool loopback = false;
  bool keep = false;
  bool readers_on_leader = false;
  std::string log_level = "info";
  std::uint64_t max_steps = 50'000'000;
  int disk_mb = 512;

  CLI::App app{"kv_faults: fault injection and a linearizability check for a kv_server cluster"};
  app.footer(kFooter);
  app.add_option("--nodes", cfg.nodes, "cluster size")
      ->check(CLI::Range(1, 9))
      ->capture_default_str();
  app.add_option("--duration", cfg.duration_s, "seconds of faults and load")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  app.add_option("--seed", cfg.seed, "seed of the fault schedule and the clients (0: random)")
      ->capture_default_str();
  app.add_option("--clients", cfg.clients, "client threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--keys", cfg.keys, "keys the clients share")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--faults", faults,
                 "kill,pause,partition,isolate,bridge,slow | all | none, plus disk (opt-in)")
      ->capture_default_str();
  app.add_flag("--unsafe", cfg.unsafe,
               "start kv_server with --unsafe-local-reads (must be caught)");
  app.add_flag("--no-fsync", cfg.no_fsync,
               "start kv_server with --no-fsync (faster; kill -9 safe)");
  app.add_option("--snapshot-entries", cfg.snapshot_entries, "kv_server --snapshot-entries")
      ->capture_default_str();
  app.add_option("--op-timeout", op_timeout_s, "client per-request deadline, seconds")
      ->check(CLI::Range(0.05, 60.0))
      ->capture_default_str();
  std::vector<std::string> server_args;
  app.add_option("--server-arg", server_args,
                 "extra kv_server argument, repeatable (e.g. --server-arg=--lease-reads)")
      ->allow_extra_args(false);
  app.add_option("--out", cfg.out_dir, "keep history, fault log, summary and node logs here");
  app.add_flag("--readers-on-leader", readers_on_leader,
               "only clients bound to the first leader read; the others write and CAS");
  app.add_flag("--keep", keep, "keep the output dir even when the run passed");
  app.add_option("--kv-server", kv_server, "kv_server binary (default: next to kv_faults)");
  app.add_option("--disk-mb", disk_mb, "tmpfs size per member for the disk fault")
      ->check(CLI::Range(32, 65536))
      ->capture_default_str();
  app.add_flag("--loopback", loopback, "do not use network namespaces (kill and pause only)");
  app.add_option("--check", check_file, "only check a recorded history file (JSON lines)");
  app.add_option("--max-steps", max_steps, "checker search budget per key")->capture_default_str();
  app.add_option("--log-level", log_level, "harness log level")->capture_default_str();
  app.add_flag("--json", cfg.json, "print one JSON object on stdout");
  if (auto rc = ringwire::tools::parse_command_line(app, argc, argv)) return *rc;
  ringwire::tools::init_stderr_logger("kv_faults", "kv_faults", log_level, /*with_date=*/false);
  CheckOptions check_opts;
  check_opts.max_steps_per_key = max_steps;

  auto invalid = [&](const std::string& msg) {
    if (cfg.json)
      std::printf("%s\n", Json{{"ok", false}, {"exit_code", 2}, {"error", msg}}.dump().c_str());
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", msg.c_str());
    return core::kExitInvalid;
  };

  if (!check_file.empty()) return check_file_only(check_file, check_opts, cfg.json, invalid);

  if (faults != "none") {
    for (const auto& f : split(faults)) {
      const auto& all = all_fault_kinds();
      if (f == "all") {
        cfg.faults.insert(cfg.faults.end(), all.begin(), all.end());
      } else if (f == "disk" || std::find(all.begin(), all.end(), f) != all.end()) {
        cfg.faults.push_back(f);
      } else {
        return invalid("unknown fault '" + f + "'");
      }
    }
  }
  const bool want_disk =
      std::find(cfg.faults.begin(), cfg.faults.end(), "disk") != cfg.faults.end();
  if (cfg.seed == 0) cfg.seed = std::random_device{}() | 1u;
  if (kv_server.empty()) {
    std::error_code ec;
    kv_server = (fs::read_symlink("/proc/self/exe", ec).parent_path() / "kv_server").string();
  }
  if (::access(kv_server.c_str(), X_OK) != 0) return invalid("no kv_server at " + kv_server);
  const bool own_out = cfg.out_dir.empty();
  if (own_out)
    cfg.out_dir =
        (fs::temp_directory_path() / ("kv_faults." + std::to_string(::getpid()))).string();
  std::error_code ec;
  fs::create_directories(cfg.out_dir, ec);
  if (ec) return invalid("cannot create " + cfg.out_dir + ": " + ec.message());

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // ---- network -------------------------------------------------------------------------
  std::unique_ptr<Network> net;
  if (loopback) {
    cfg.network = "loopback (--loopback)";
  } else if (::geteuid() != 0) {
    cfg.network = "loopback (not root: no network namespaces)";
  } else {
    Network::cleanup_stale();
    remove_stale_out_dirs();
    net = std::make_unique<Network>();
    std::string err;
    if (!net->create(cfg.nodes, &err)) {
      cfg.network = "loopback (namespaces failed: " + err + ")";
      net.reset();
    } else {
      cfg.network = "netns";
      cfg.netem = net->netem_available();
      if (!cfg.netem)
        spdlog::warn(
            "tc netem is not available in this kernel (no sch_netem): the slow fault "
            "uses a tbf rate limit instead of delay + loss");
    }
  }
  if (!net) {
    spdlog::warn(
        "falling back to loopback ports: {}; partition, isolate, bridge and slow faults "
        "are disabled (no fault-injecting proxy is implemented)",
        cfg.network);
    std::vector<std::string> kept;
    for (const auto& f : cfg.faults) {
      const auto& nf = network_fault_kinds();
      if (std::find(nf.begin(), nf.end(), f) == nf.end()) kept.push_back(f);
    }
    cfg.faults = kept;
  }

  // ---- disks (the disk fault) ------------------------------------------------------------
  Disks disks;
  std::vector<fs::path> disk_roots;
  for (int i = 0; i < cfg.nodes; ++i)
    disk_roots.push_back(fs::path(cfg.out_dir) / ("n" + std::to_string(i + 1) + "-disk"));
  if (want_disk) {
    std::string err;
    if (::geteuid() != 0) {
      err = "not root";
    } else {
      Disks::cleanup_stale();
      disks.mount(disk_roots, disk_mb, &err);
    }
    if (!disks.active()) {
      spdlog::warn("disk fault disabled: cannot mount tmpfs data dirs ({})", err);
      cfg.faults.erase(std::remove(cfg.faults.begin(), cfg.faults.end(), "disk"), cfg.faults.end());
    }
  }

  // ---- cluster -------------------------------------------------------------------------
  std::vector<NodeSpec> specs;
  for (int i = 0; i < cfg.nodes; ++i) {
    NodeSpec s;
    s.name = "n" + std::to_string(i + 1);
    if (net) {
      s.host = net->ip(i);
      s.client_port = 2379;
      s.peer_port = 2380;
      s.netns_path = net->ns_path(i);
    } else {
      s.host = "127.0.0.1";
      s.client_port = free_loopback_port();
      s.peer_port = free_loopback_port();
    }
    s.data_dir = disks.active() ? disk_roots[static_cast<std::size_t>(i)] / "data"
                                : fs::path(cfg.out_dir) / s.name;
    s.log_path = fs::path(cfg.out_dir) / (s.name + ".log");
    fs::remove_all(s.data_dir, ec);
    specs.push_back(s);
  }
  std::vector<std::string> extra{"--log-level", "info", "--snapshot-entries",
                                 std::to_string(cfg.snapshot_entries)};
  if (cfg.no_fsync) extra.push_back("--no-fsync");
  if (cfg.unsafe) extra.push_back("--unsafe-local-reads");
  extra.insert(extra.end(), server_args.begin(), server_args.end());
  cfg.server_args = server_args;
  Nodes nodes(kv_server, specs, extra);
  spdlog::info("seed {}: {} nodes ({}), {} clients, {} keys, {:.0f} s, faults [{}]{}", cfg.seed,
               cfg.nodes, cfg.network, cfg.clients, cfg.keys, cfg.duration_s,
               fmt::join(cfg.faults, ","), cfg.unsafe ? ", UNSAFE local reads" : "");
  for (int i = 0; i < cfg.nodes; ++i) {
    std::string err;
    if (!nodes.start(i, &err))
      return invalid("cannot start " + specs[static_cast<std::size_t>(i)].name + ": " + err);
  }
  if (!nodes.wait_healthy(60s) || g_stop.load()) {
    nodes.kill_all();
    return invalid("the cluster did not elect a leader within 60 s (logs in " + cfg.out_dir + ")");
  }

  // ---- load + faults -------------------------------------------------------------------
  const auto epoch = std::chrono::steady_clock::now();
  WorkloadOptions wo;
  wo.clients = cfg.clients;
  wo.keys = cfg.keys;
  wo.seed = cfg.seed;
  wo.op_timeout = std::chrono::milliseconds(static_cast<long long>(op_timeout_s * 1000));
  wo.endpoints = nodes.client_addresses();
  if (readers_on_leader) {
    const auto l = nodes.leader();
    if (!l) return invalid("no leader to bind the readers to");
    wo.read_node = *l;
    spdlog::info("readers bound to the leader {}", specs[static_cast<std::size_t>(*l)].name);
  }
  Workload load(wo, epoch);
  NemesisOptions no;
  no.kinds = cfg.faults;
  no.seed = cfg.seed;
  Nemesis nemesis(no, &nodes, net.get(), disks.active() ? &disks : nullptr, epoch);
  load.start();
  std::atomic<bool> progress_stop{false};
  std::thread progress([&] {
    auto next = std::chrono::steady_clock::now() + 10s;
    while (!progress_stop.load()) {
      std::this_thread::sleep_for(100ms);
      if (std::chrono::steady_clock::now() < next) continue;
      next += 10s;
      spdlog::info("{:.0f} s: {} ops",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch).count(),
                   load.ops());
    }
  });
  const auto deadline = epoch + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(cfg.duration_s));
  nemesis.run(deadline, [] { return g_stop.load(); });
  nemesis.heal_all();
  // Keep the load on for a moment after healing, so recovery is in the history too.
  for (int i = 0; i < 30 && !g_stop.load(); ++i)
    std::this_thread::sleep_for(100ms);
  load.stop();
  progress_stop.store(true);
  progress.join();
  History history = load.take_history();

  // ---- final reads, convergence, checks ------------------------------------------------
  RunResult res;
  res.healthy_after_heal = nodes.wait_healthy(30s);
  if (!g_stop.load()) res.final = final_reads(nodes, cfg.keys, epoch, 30s, &history);
  res.interrupted = g_stop.load();
  for (int i = 0; i < cfg.nodes; ++i)
    for (int code : nodes.state(i).expected_exits)
      res.expected_exits.push_back(specs[static_cast<std::size_t>(i)].name + " exited with " +
                                   std::to_string(code) + " under the disk fault");
  for (int i = 0; i < cfg.nodes; ++i)
    for (int code : nodes.state(i).unexpected_exits)
      res.unexpected_exits.push_back(specs[static_cast<std::size_t>(i)].name + " exited with " +
                                     std::to_string(code));
  nodes.kill_all();
  net.reset();  // removes namespaces, veths and the bridge
  // The members' data on the tmpfs mounts goes with them (histories and logs are kept).
  disks.unmount_all();
  if (want_disk) {
    for (const auto& r : disk_roots)
      fs::remove(r, ec);
  }

  spdlog::info("checking {} ops", history.size());
  res.lost = lost_writes(history);
  res.check = check_history(history, check_opts);
  res.faults = nemesis.counts();
  res.fault_events = nemesis.events();
  const int rc = write_report(cfg, history, res, std::cout);
  // A passing run keeps its history and logs under --out, not the members' data dirs.
  if (rc == core::kExitOk && !keep) {
    for (const auto& s : specs)
      fs::remove_all(s.data_dir, ec);
    if (own_out) fs::remove_all(cfg.out_dir, ec);
  }
  return rc;
}

// Exceptions unwind through run(), so the network and the members are torn down by their
// destructors on this path too.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", e.what());
    return core::kExitInvalid;
  }
}
