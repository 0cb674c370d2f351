#include "options.hpp"

#include <sched.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "transport.hpp"

namespace ipcb {

namespace {

void usage(std::FILE* f) {
  std::string names;
  for (const auto& t : all_transports())
    names += std::string(names.empty() ? "" : ",") + t->name();
  std::fprintf(
      f,
      "usage: ipc_bench [options]\n"
      "Inter-process transports between two forked processes pinned to two CPUs:\n"
      "one-way latency (ping-pong RTT/2, 64-byte messages by default: p50 / p99 / p99.9 / max,\n"
      "with floor blocks interleaved) and verified throughput (64 B and 4 KiB).\n"
      "  --cpus A,B            client/producer on CPU A, echo/consumer on CPU B (default 0,1)\n"
      "  --reps N              repetitions, interleaved across cells (default 5; median\n"
      "                        and min..max are reported)\n"
      "  --quick               smoke run: 5k round trips, 50k / 10k messages, 3 reps\n"
      "  --transports LIST     comma-separated subset of:\n"
      "                        %s\n"
      "  --rtt N               timed round trips per latency rep (default 100000)\n"
      "  --latency-size B      latency message bytes, multiple of 8 in 16..4096 (default 64)\n"
      "  --rtt-block N         round trips per alternating floor / transport block (1000)\n"
      "  --msgs64 N            64-byte messages per throughput rep (default 1000000)\n"
      "  --msgs4k N            4 KiB messages per throughput rep (default 200000)\n"
      "  --tput-batch N        ringwire throughput: publish / release every N (default 32)\n"
      "  --channel-capacity B  ringwire channel ring bytes, power of two (default 1048576)\n"
      "  --timeout SEC         give up on a cell after SEC seconds (default 60)\n"
      "  --json                print one JSON object on stdout (the table goes to stderr)\n"
      "  --inject-corruption N self-test: producers send a wrong sequence number every N\n"
      "                        messages; the receivers must catch it (exit status 3)\n"
      "  --help                this text\n"
      "Exit status: 0 ok; 1 a cell could not run (or the run was interrupted);\n"
      "2 bad arguments; 3 verification failed (a receiver saw a lost, duplicated or\n"
      "corrupt message in some rep).\n",
      names.c_str());
}

bool parse_u64(const char* s, std::uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-') return false;
  out = v;
  return true;
}

}  // namespace

int parse_options(int argc, char** argv, Options& o) {
  bool reps_set = false, rtt_set = false, small_set = false, large_set = false, block_set = false;
  for (int i = 0; i < argc; ++i) {
    if (i) o.argv_line.push_back(' ');
    o.argv_line.append(argv[i]);
  }
  auto bad = [](const std::string& msg) {
    std::fprintf(stderr, "ipc_bench: %s (see --help)\n", msg.c_str());
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    auto num = [&](std::uint64_t lo, std::uint64_t hi, std::uint64_t& v) -> bool {
      if (!has_value || !parse_u64(argv[i + 1], v) || v < lo || v > hi) return false;
      ++i;
      return true;
    };
    std::uint64_t v = 0;
    if (a == "--help" || a == "-h") {
      usage(stdout);
      return 1;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--cpus") {
      int x = -1, y = -1;
      char extra = 0;
      if (!has_value || std::sscanf(argv[i + 1], "%d,%d%c", &x, &y, &extra) != 2 || x < 0 ||
          y < 0 || x == y || x >= CPU_SETSIZE || y >= CPU_SETSIZE) {
        return bad("--cpus needs two different CPU numbers: A,B");
      }
      o.cpu_a = x;
      o.cpu_b = y;
      ++i;
    } else if (a == "--reps") {
      if (!num(1, 1000, v)) return bad("--reps needs a number in 1..1000");
      o.reps = static_cast<int>(v);
      reps_set = true;
    } else if (a == "--transports") {
      if (!has_value) return bad("--transports needs a list");
      std::stringstream ss(argv[++i]);
      std::string name;
      const auto known = all_transports();
      while (std::getline(ss, name, ',')) {
        if (name.empty()) continue;
        bool found = false;
        for (const auto& t : known)
          found |= name == t->name();
        if (!found) return bad("unknown transport '" + name + "'");
        o.transports.push_back(name);
      }
      if (o.transports.empty()) return bad("--transports needs at least one name");
    } else if (a == "--rtt") {
      if (!num(100, 100'000'000, v)) return bad("--rtt needs a number in 100..1e8");
      o.rtt = v;
      rtt_set = true;
    } else if (a == "--latency-size") {
      if (!num(16, 4096, v) || v % 8 != 0) {
        return bad("--latency-size needs a multiple of 8 in 16..4096");
      }
      o.latency_size = static_cast<std::size_t>(v);
    } else if (a == "--rtt-block") {
      if (!num(10, 1'000'000, v)) return bad("--rtt-block needs a number in 10..1e6");
      o.rtt_block = static_cast<std::uint32_t>(v);
      block_set = true;
    } else if (a == "--msgs64") {
      if (!num(1000, 10'000'000'000ull, v)) return bad("--msgs64 needs a number >= 1000");
      o.msgs_small = v;
      small_set = true;
    } else if (a == "--msgs4k") {
      if (!num(1000, 1'000'000'000ull, v)) return bad("--msgs4k needs a number >= 1000");
      o.msgs_large = v;
      large_set = true;
    } else if (a == "--tput-batch") {
      if (!num(1, 4096, v)) return bad("--tput-batch needs a number in 1..4096");
      o.tput_batch = static_cast<std::uint32_t>(v);
    } else if (a == "--channel-capacity") {
      if (!num(4096, std::uint64_t{1} << 32, v) || (v & (v - 1)) != 0) {
        return bad("--channel-capacity needs a power of two in 4096..2^32");
      }
      o.channel_capacity = v;
    } else if (a == "--inject-corruption") {
      if (!num(1, UINT64_MAX, v)) return bad("--inject-corruption needs a number >= 1");
      o.corrupt_every = v;
    } else if (a == "--timeout") {
      if (!num(1, 3600, v)) return bad("--timeout needs seconds in 1..3600");
      o.timeout_s = static_cast<double>(v);
    } else {
      return bad("unknown option '" + a + "'");
    }
  }
  if (o.quick) {
    if (!reps_set) o.reps = 3;
    if (!rtt_set) o.rtt = 5'000;
    if (!block_set) o.rtt_block = 500;
    if (!small_set) o.msgs_small = 50'000;
    if (!large_set) o.msgs_large = 10'000;
    o.warmup = 200;
  }
  if (o.rtt_block > o.rtt) o.rtt_block = static_cast<std::uint32_t>(o.rtt);
  return 0;
}

}  // namespace ipcb
