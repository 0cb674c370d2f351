// spsc_queue: moves messages through SpscRing (or the MutexQueue baseline)
// between two processes over shared memory, or two threads, verifies every
// message and reports throughput or round-trip latency.
//
// Exit codes: 0 ok, 2 invalid input or unavailable IPC resource, 3 data
// verification failed, 4 the peer process died mid-run.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "ringwire/core/status.hpp"
#include "run.hpp"

namespace {

using ringwire::tools::Options;
using ringwire::tools::Report;

std::uint64_t percentile(const std::vector<std::uint64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto idx = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)];
}

const char* mode_name(const Options& o) {
  return o.mode == ringwire::tools::QueueMode::lockfree ? "lockfree" : "mutex";
}
const char* role_name(const Options& o) {
  switch (o.role) {
    case ringwire::tools::Role::producer:
      return "producer";
    case ringwire::tools::Role::consumer:
      return "consumer";
    default:
      return "both";
  }
}

// Does this process hold results it can report (the measuring side)?
bool reports_results(const Options& o) {
  using ringwire::tools::Role;
  if (o.role == Role::both) return true;
  return o.latency ? o.role == Role::producer : o.role == Role::consumer;
}

void print_json(const Options& o, const Report& r) {
  nlohmann::json j;
  j["mode"] = mode_name(o);
  j["transport"] = o.threads ? "threads" : "processes";
  j["role"] = role_name(o);
  j["test"] = o.latency ? "latency" : "throughput";
  j["messages"] = r.messages;
  j["message_bytes"] = r.message_bytes;
  j["payload_bytes"] = o.payload;
  j["capacity"] = o.capacity;
  j["batch"] = o.batch;
  j["wait"] = o.wait == ringwire::tools::WaitKind::spin ? "spin" : "sleep";
  j["elapsed_s"] = r.elapsed_s;
  const double mps = r.elapsed_s > 0 ? static_cast<double>(r.messages) / r.elapsed_s : 0.0;
  j["msgs_per_sec"] = mps;
  j["mb_per_sec"] = mps * static_cast<double>(r.message_bytes) / 1e6;
  if (reports_results(o)) {
    j["verified"] = r.exit_code == 0 && r.verify.ok(o.iters);
  } else {
    j["verified"] = nullptr;  // the producer cannot see what arrived
  }
  j["received"] = r.verify.received;
  j["lost"] = r.verify.lost;
  j["out_of_order"] = r.verify.out_of_order;
  j["corrupt"] = r.verify.corrupt;
  j["futex_wakeups"] = r.wakeups;
  if (o.latency && !r.rtt_ns.empty()) {
    j["latency_ns"] = {{"p50", percentile(r.rtt_ns, 0.50)},
                       {"p99", percentile(r.rtt_ns, 0.99)},
                       {"p999", percentile(r.rtt_ns, 0.999)},
                       {"max", r.rtt_ns.back()},
                       {"samples", r.rtt_ns.size()}};
  }
  j["exit_code"] = r.exit_code;
  if (r.exit_code != 0) j["error"] = r.error;
  std::printf("%s\n", j.dump().c_str());
}

void print_text(const Options& o, const Report& r) {
  std::printf(
      "spsc_queue: %s, %s, %s, %llu messages of %zu bytes (payload %zu), capacity %llu, "
      "batch %zu\n",
      mode_name(o), o.threads ? "2 threads" : "2 processes",
      o.latency ? "ping-pong latency" : "throughput", static_cast<unsigned long long>(o.iters),
      r.message_bytes, o.payload, static_cast<unsigned long long>(o.capacity), o.batch);
  if (r.exit_code == 0 || r.has_results) {
    const double mps = r.elapsed_s > 0 ? static_cast<double>(r.messages) / r.elapsed_s : 0.0;
    if (r.messages > 0) {
      std::printf("elapsed %.3f s: %.2f M msgs/s, %.1f MB/s\n", r.elapsed_s, mps / 1e6,
                  mps * static_cast<double>(r.message_bytes) / 1e6);
    }
    if (o.latency && !r.rtt_ns.empty()) {
      std::printf("round trip (ns): p50 %llu  p99 %llu  p99.9 %llu  max %llu  (%zu samples)\n",
                  static_cast<unsigned long long>(percentile(r.rtt_ns, 0.50)),
                  static_cast<unsigned long long>(percentile(r.rtt_ns, 0.99)),
                  static_cast<unsigned long long>(percentile(r.rtt_ns, 0.999)),
                  static_cast<unsigned long long>(r.rtt_ns.back()), r.rtt_ns.size());
    }
    if (reports_results(o)) {
      std::printf("verified: %llu received, %llu lost, %llu out of order, %llu corrupt\n",
                  static_cast<unsigned long long>(r.verify.received),
                  static_cast<unsigned long long>(r.verify.lost),
                  static_cast<unsigned long long>(r.verify.out_of_order),
                  static_cast<unsigned long long>(r.verify.corrupt));
    }
  }
  if (r.exit_code == 0) std::printf("OK\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ringwire::tools;
  Options o;
  CLI::App app{
      "spsc_queue: send messages through a lock-free SPSC ring (or the mutex baseline) between\n"
      "two processes over POSIX shared memory (or two threads), verify every message, and\n"
      "report throughput or ping-pong latency.\n\n"
      "Exit codes: 0 ok, 2 invalid input or unavailable IPC resource, 3 verification failed\n"
      "(loss, duplicate, reorder, corruption), 4 the peer process died mid-run."};
  app.set_version_flag("--version", "spsc_queue (ringwire) 0.1.0");
  std::string mode = "lockfree", role = "both", wait = "spin", pin;
  app.add_option("--iters,-n", o.iters, "messages (or round trips with --latency)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{10'000'000'000ull}));
  app.add_option("--mode", mode, "lockfree (SpscRing) or mutex (MutexQueue baseline)")
      ->check(CLI::IsMember({"lockfree", "mutex"}));
  app.add_flag("--threads", o.threads, "two threads in one process instead of two processes");
  app.add_option("--capacity", o.capacity, "ring slots, a power of two (default 4096)");
  app.add_option("--payload", o.payload,
                 "payload bytes per message after the 16-byte header: 0, 8, 16, ... 4096 "
                 "(powers of two); 256 is the seed's message");
  app.add_option("--batch", o.batch, "messages per claim/commit (zero-copy batch API); 1 = single")
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  app.add_option("--pin", pin, "pin producer and consumer to CPUs, e.g. --pin 0,1");
  app.add_flag("--latency", o.latency, "ping-pong: time each round trip, print percentiles");
  app.add_flag("--json", o.json, "print one JSON object on stdout");
  app.add_option("--role", role,
                 "both (fork the peer; default), consumer (create the segment and wait for a "
                 "producer) or producer (open an existing segment by --name)")
      ->check(CLI::IsMember({"both", "producer", "consumer"}));
  app.add_option("--name", o.name,
                 "segment name (default spsc_queue.<pid>), in /dev/shm as ringwire.<name>");
  app.add_option("--wait", wait, "spin (busy-wait) or sleep (spin, then futex sleep)")
      ->check(CLI::IsMember({"spin", "sleep"}));
  app.add_option("--timeout", o.timeout_s, "seconds to wait for the peer, for space or for data")
      ->check(CLI::Range(0.001, 3600.0));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : ringwire::core::kExitInvalid;
  }

  auto invalid = [&](const std::string& msg) {
    if (o.json) {
      nlohmann::json j{{"exit_code", 2}, {"error", msg}, {"verified", false}};
      std::printf("%s\n", j.dump().c_str());
    }
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", msg.c_str());
    return ringwire::core::kExitInvalid;
  };

  o.mode = mode == "lockfree" ? QueueMode::lockfree : QueueMode::mutex;
  o.role = role == "both" ? Role::both : role == "producer" ? Role::producer : Role::consumer;
  o.wait = wait == "spin" ? WaitKind::spin : WaitKind::sleep;
  if (o.capacity == 0 || (o.capacity & (o.capacity - 1)) != 0 || o.capacity > (1ull << 24)) {
    return invalid("--capacity must be a power of two between 1 and 16777216");
  }
  const auto& sizes = supported_payloads();
  if (std::find(sizes.begin(), sizes.end(), o.payload) == sizes.end()) {
    return invalid("--payload must be one of 0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096");
  }
  if (o.threads && o.role != Role::both) return invalid("--threads cannot be combined with --role");
  if (o.role == Role::producer && o.name.empty()) return invalid("--role producer needs --name");
  if (o.latency && o.batch != 1) return invalid("--latency measures single messages; drop --batch");
  if (o.latency && o.iters > 100'000'000)
    return invalid("--latency supports at most 1e8 round trips");
  if (!pin.empty()) {
    int a = -1, b = -1;
    char extra = 0;
    if (std::sscanf(pin.c_str(), "%d,%d%c", &a, &b, &extra) != 2 || a < 0 || b < 0 ||
        a >= CPU_SETSIZE || b >= CPU_SETSIZE) {
      return invalid("--pin expects two CPU numbers, e.g. --pin 0,1");
    }
    o.pin = std::make_pair(a, b);
  }

  Report r = run(o);
  if (r.exit_code == 0 && reports_results(o) && !r.verify.ok(o.iters)) {
    r.exit_code = ringwire::core::kExitVerifyFailed;
    r.error = "verification failed: messages lost, out of order or corrupt";
  }
  if (o.json) {
    print_json(o, r);
  } else {
    print_text(o, r);
  }
  if (r.exit_code == ringwire::core::kExitInvalid) {
    std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", r.error.c_str());
  } else if (r.exit_code != 0) {
    std::fprintf(stderr, "ERROR: %s\n", r.error.c_str());
  }
  return r.exit_code;
}
