// Shared pieces of kv_client: global options, output helpers and exit codes.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ringwire/core/status.hpp"
#include "ringwire/kv/client/client.hpp"

namespace ringwire::tools::kv {

namespace kc = ringwire::kv::client;
using Json = nlohmann::json;

struct Global {
  std::vector<std::string> servers;  // after parse_endpoints
  double timeout_s = 5.0;
  bool json = false;
  std::string cache;              // --cache NAME: read through this host's kv_cache
  double max_staleness_ms = 100;  // --max-staleness-ms

  kc::Options client_options() const {
    kc::Options o;
    o.endpoints = servers;
    o.timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000.0 + 0.5));
    return o;
  }
};

inline void emit(const Json& j) {
  // Keys and values are bytes; anything that is not UTF-8 is replaced, not an exception.
  std::printf("%s\n", j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  std::fflush(stdout);
}

// Exit 2 with the seed's error line; in --json mode also one JSON object on stdout.
inline int fail(const Global& g, const std::string& msg) {
  if (g.json) emit(Json{{"ok", false}, {"exit_code", core::kExitInvalid}, {"error", msg}});
  std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n", msg.c_str());
  return core::kExitInvalid;
}

inline Json header_json(const kc::Header& h) {
  return Json{{"cluster_id", h.cluster_id},
              {"member_id", h.member_id},
              {"revision", h.revision},
              {"raft_term", h.raft_term}};
}

inline Json kv_json(const kc::KeyValue& kv) {
  return Json{{"key", kv.key},
              {"value", kv.value},
              {"create_revision", kv.create_revision},
              {"mod_revision", kv.mod_revision},
              {"version", kv.version},
              {"lease", kv.lease}};
}

inline void print_kv(const kc::KeyValue& kv, bool with_value = true) {
  std::fwrite(kv.key.data(), 1, kv.key.size(), stdout);
  std::fputc('\n', stdout);
  if (with_value) {
    std::fwrite(kv.value.data(), 1, kv.value.size(), stdout);
    std::fputc('\n', stdout);
  }
}

std::string hex_id(std::uint64_t id);

// Commands (commands.cpp, bench.cpp). Each returns the process exit code.
struct GetArgs {
  std::string key;
  kc::GetOptions opts;
  bool linearizable = false;  // with --cache: skip the cache
};
struct PutArgs {
  std::string key, value;
  bool prev_kv = false;
};
struct DelArgs {
  std::string key;
  bool prefix = false, prev_kv = false;
};
struct TxnArgs {
  std::string key;
  std::vector<std::string> expect_value;  // 0 or 1 (CLI11 tells "given" from "empty")
  std::vector<std::int64_t> expect_mod_rev;
  bool expect_absent = false;
  std::string put_value;
};
struct WatchArgs {
  std::string key;
  bool prefix = false, prev_kv = false;
  std::int64_t rev = 0;
  std::uint64_t count = 0;  // 0: until the timeout
  double timeout_s = 30.0;
};
struct BenchArgs {
  std::string op;  // put | get
  unsigned clients = 16;
  std::uint64_t ops = 10000;
  std::size_t value_size = 100;
  std::size_t key_size = 16;
  std::uint64_t keys = 1000;
  bool serializable = false;
  unsigned channels = 0;  // 0: min(clients, 8)
  double max_seconds = 300.0;
  std::string key_prefix = "b";
};

int run_get(const Global& g, const GetArgs& a);
int run_put(const Global& g, const PutArgs& a);
int run_del(const Global& g, const DelArgs& a);
int run_txn(const Global& g, const TxnArgs& a);
int run_watch(const Global& g, const WatchArgs& a);
int run_members(const Global& g);
int run_status(const Global& g);
int run_bench(const Global& g, const BenchArgs& a);
int run_cache_stats(const Global& g);

}  // namespace ringwire::tools::kv
