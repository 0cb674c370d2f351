// ringwire::kv::client: a small synchronous client for etcd v3's gRPC API (KV, Watch,
// Cluster.MemberList, Maintenance.Status), which both kv_server and etcd 3.4 serve.
//
// * One Client talks to one or more endpoints ("host:port"). Calls go to the current endpoint;
//   on UNAVAILABLE, DEADLINE_EXCEEDED or a connection failure the next endpoint is tried.
// * Every call has a deadline (Options::timeout, default 5 s) per attempt; each endpoint is
//   tried at most once per call, so a call takes at most endpoints x timeout.
// * Exactly-once retries: every mutating call (put, del, cas) carries the gRPC metadata
//   ringwire-client-id (a random 64-bit id per Client, decimal) and ringwire-seq (1, 2, 3, ...
//   per Client). Mutating calls of one Client are serialised (one request outstanding per
//   client id). kv_server applies each (client id, seq) once, so a write whose outcome is
//   unknown (sent, then the connection broke or the deadline passed) is retried on the next
//   endpoint with the same seq. etcd ignores the metadata; set Options::server_dedups = false
//   against etcd to retry a write only when it certainly was not sent (no connection).
// * Results are core::Result<T> / core::Status; messages carry the gRPC status text, e.g.
//   "etcdserver: mvcc: required revision has been compacted".
//
// A Client is thread-safe. For parallel writes use one Client per thread (each has its own
// client id); Options::connection picks which TCP connection a Client uses (Clients with the
// same endpoint and connection number share one).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringwire/core/status.hpp"

namespace ringwire::kv::client {

using core::Errc;
using core::Result;
using core::Status;

struct Options {
  std::vector<std::string> endpoints{"127.0.0.1:9001"};
  std::chrono::milliseconds timeout{5000};  // per attempt
  bool server_dedups = true;  // retry writes of unknown outcome (safe with kv_server's dedup)
  int connection = 0;         // Clients with equal (endpoint, connection) share a TCP connection
};

struct Header {
  std::uint64_t cluster_id = 0;
  std::uint64_t member_id = 0;
  std::int64_t revision = 0;
  std::uint64_t raft_term = 0;
};

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

// ---- get ---------------------------------------------------------------------------------
struct GetOptions {
  bool prefix = false;        // every key starting with key ("" = every key)
  bool serializable = false;  // served by the local replica, no ReadIndex round
  std::int64_t revision = 0;  // <= 0: newest
  std::int64_t limit = 0;     // 0: no limit
  bool keys_only = false;
  bool count_only = false;
};
struct GetResult {
  Header header;
  std::vector<KeyValue> kvs;
  bool more = false;
  std::int64_t count = 0;
};

// ---- put / del ---------------------------------------------------------------------------
struct PutOptions {
  bool prev_kv = false;
};
struct PutResult {
  Header header;
  std::optional<KeyValue> prev_kv;
};

struct DeleteOptions {
  bool prefix = false;
  bool prev_kv = false;
};
struct DeleteResult {
  Header header;
  std::int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;
};

// ---- compare-and-swap --------------------------------------------------------------------
// One Txn: if the compare holds, put key = new_value; otherwise read key (so the caller sees
// what is there).
struct CasRequest {
  enum class Expect { value, mod_revision, absent };
  std::string key;
  Expect expect = Expect::value;
  std::string expected_value;            // Expect::value: value == expected_value
  std::int64_t expected_mod_revision{};  // Expect::mod_revision: mod_revision == this
  std::string new_value;                 // Expect::absent: create_revision == 0
};
struct CasResult {
  Header header;
  bool succeeded = false;
  std::optional<KeyValue> current;  // on failure: the key's current value, if it exists
};

// ---- watch -------------------------------------------------------------------------------
struct WatchOptions {
  bool prefix = false;
  std::int64_t start_revision = 0;  // 0: from the next revision
  bool prev_kv = false;
  // Called on the watch's thread for a progress reply (to Watch::request_progress): every
  // event up to `revision` has been delivered to the callback before it.
  std::function<void(std::int64_t revision)> on_progress;
};
struct Event {
  enum class Type { put, del };
  Type type = Type::put;
  KeyValue kv;
  std::optional<KeyValue> prev_kv;
};
// Return false to stop watching.
using WatchCallback = std::function<bool(const Event&)>;

// A running watch: events are delivered to the callback on the watch's own thread.
class Watch {
 public:
  virtual ~Watch() = default;
  // Ask the watch to stop (cancels the stream); safe from any thread and the callback.
  virtual void stop() = 0;
  // Wait until the watch ended (callback returned false, stop(), stream error) or the time
  // passed; true when it ended.
  virtual bool wait_for(std::chrono::milliseconds d) = 0;
  // Why it ended: ok after stop() or the callback said stop, otherwise the stream's error
  // (e.g. the start revision was compacted).
  virtual Status status() const = 0;
  virtual std::int64_t watch_id() const = 0;
  // Asks the server for a progress reply (WatchOptions::on_progress); fails once the watch
  // ended. Safe from any thread.
  virtual Status request_progress() = 0;
};

// ---- cluster -----------------------------------------------------------------------------
struct Member {
  std::uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};
struct MembersResult {
  Header header;
  std::vector<Member> members;
};

struct EndpointStatus {
  std::string endpoint;
  Header header;
  std::string version;
  std::int64_t db_size = 0;
  std::int64_t db_size_in_use = 0;
  std::uint64_t leader = 0;
  std::uint64_t raft_index = 0;
  std::uint64_t raft_term = 0;
  std::uint64_t raft_applied_index = 0;
  bool is_learner = false;
  std::vector<std::string> errors;
};

class Client {
 public:
  // Fails on an empty or malformed endpoint list (no connection is made yet).
  static Result<std::unique_ptr<Client>> create(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<GetResult> get(const std::string& key, const GetOptions& o = {});
  Result<PutResult> put(const std::string& key, const std::string& value, const PutOptions& o = {});
  Result<DeleteResult> del(const std::string& key, const DeleteOptions& o = {});
  Result<CasResult> cas(const CasRequest& r);
  // Starts a watch and returns once the server confirmed it (events after that are seen).
  Result<std::unique_ptr<Watch>> watch(const std::string& key, const WatchOptions& o,
                                       WatchCallback cb);
  Result<MembersResult> members();
  // Status of one endpoint (need not be in Options::endpoints); no failover.
  Result<EndpointStatus> status(const std::string& endpoint);

  std::uint64_t client_id() const noexcept;
  std::uint64_t last_seq() const noexcept;  // seq of the latest mutating call
  std::string current_endpoint() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The end of the range of keys with this prefix ("\0" for the empty prefix), as etcd uses.
std::string prefix_range_end(const std::string& prefix);

// "a:1,b:2" and repeated options -> endpoint list; rejects empty and port-less entries.
Result<std::vector<std::string>> parse_endpoints(const std::vector<std::string>& specs);

}  // namespace ringwire::kv::client
