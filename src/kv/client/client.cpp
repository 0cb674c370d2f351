// ringwire::kv::client over the generated etcd v3 gRPC stubs (see client.hpp for the
// contract: failover, deadlines, dedup metadata).
#include "ringwire/kv/client/client.hpp"
#include "ringwire/kv/grpc_runtime.hpp"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace ringwire::kv::client {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;

namespace {

const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

Errc errc_for(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:  // etcd: compacted / future revision
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::UNIMPLEMENTED:
      return Errc::invalid_argument;
    case grpc::StatusCode::NOT_FOUND:
      return Errc::not_found;
    case grpc::StatusCode::ALREADY_EXISTS:
      return Errc::already_exists;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return Errc::permission_denied;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Errc::timed_out;
    default:
      return Errc::system_error;
  }
}

std::string describe(const std::string& endpoint, const grpc::Status& s) {
  std::string m = endpoint + ": " + code_name(s.error_code());
  if (!s.error_message().empty()) m += ": " + s.error_message();
  return m;
}

bool retryable(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAVAILABLE || c == grpc::StatusCode::DEADLINE_EXCEEDED;
}

Header to_header(const pb::ResponseHeader& h) {
  return {h.cluster_id(), h.member_id(), h.revision(), h.raft_term()};
}

KeyValue to_kv(const mvccpb::KeyValue& k) {
  return {k.key(), k.value(), k.create_revision(), k.mod_revision(), k.version(), k.lease()};
}

std::uint64_t random_client_id() {
  std::random_device rd;
  std::seed_seq seq{rd(),
                    rd(),
                    rd(),
                    rd(),
                    static_cast<unsigned>(::getpid()),
                    static_cast<unsigned>(Clock::now().time_since_epoch().count())};
  std::mt19937_64 gen(seq);
  std::uint64_t id = 0;
  while (id == 0)
    id = gen();  // 0 means "no dedup" to kv_server
  return id;
}

gpr_timespec to_gpr(Clock::time_point t) {
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(t - Clock::now());
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_micros(std::max<std::int64_t>(left.count(), 0), GPR_TIMESPAN));
}

const char* state_name(grpc_connectivity_state s) {
  switch (s) {
    case GRPC_CHANNEL_IDLE:
      return "idle";
    case GRPC_CHANNEL_CONNECTING:
      return "connecting";
    case GRPC_CHANNEL_READY:
      return "ready";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "transient failure";
    case GRPC_CHANNEL_SHUTDOWN:
      return "shutdown";
  }
  return "unknown";
}

}  // namespace

std::string prefix_range_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Result<std::vector<std::string>> parse_endpoints(const std::vector<std::string>& specs) {
  std::vector<std::string> out;
  for (const auto& spec : specs) {
    std::size_t pos = 0;
    while (pos <= spec.size()) {
      std::size_t comma = spec.find(',', pos);
      if (comma == std::string::npos) comma = spec.size();
      std::string ep = spec.substr(pos, comma - pos);
      pos = comma + 1;
      for (const char* scheme : {"http://", "grpc://", "dns:///"}) {
        if (ep.rfind(scheme, 0) == 0) ep = ep.substr(std::char_traits<char>::length(scheme));
      }
      if (ep.empty()) return Status(Errc::invalid_argument, "empty endpoint in '" + spec + "'");
      const auto colon = ep.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == ep.size() ||
          ep.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
        return Status(Errc::invalid_argument, "endpoint '" + ep + "' is not host:port");
      }
      const long port = std::strtol(ep.c_str() + colon + 1, nullptr, 10);
      if (port < 1 || port > 65535) {
        return Status(Errc::invalid_argument, "endpoint '" + ep + "': port out of range");
      }
      out.push_back(ep);
    }
  }
  if (out.empty()) return Status(Errc::invalid_argument, "no endpoint given");
  return out;
}

// ---- one endpoint: a channel and its stubs --------------------------------------------------
struct Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Cluster::Stub> cluster;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;

  Endpoint(std::string addr, int connection) : address(std::move(addr)) {
    grpc::ChannelArguments args;
    // Channels with equal arguments share a subchannel (TCP connection); a distinct value
    // per connection number gives Clients their own connection when asked to.
    args.SetInt("ringwire.connection", connection);
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 64 << 20);
    // gRPC also uses MIN_RECONNECT_BACKOFF as the minimum connect timeout: a small value
    // made reconnects to a restarted member fail for many seconds on a loaded machine.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    kv = pb::KV::NewStub(channel);
    watch = pb::Watch::NewStub(channel);
    cluster = pb::Cluster::NewStub(channel);
    maintenance = pb::Maintenance::NewStub(channel);
  }

  // Waits until the channel is connected, it failed to connect, or the deadline passed.
  // On failure returns why; a request is certainly not sent when this fails.
  std::optional<std::string> connect(Clock::time_point deadline) const {
    auto st = channel->GetState(true);
    while (st != GRPC_CHANNEL_READY) {
      if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN) {
        return std::string("connection failed (channel ") + state_name(st) +
               "; is a server listening there?)";
      }
      if (!channel->WaitForStateChange(st, to_gpr(deadline))) {
        return std::string("no connection before the deadline (channel ") + state_name(st) + ")";
      }
      st = channel->GetState(true);
    }
    return std::nullopt;
  }
};

// ---- watch ------------------------------------------------------------------------------------
class WatchImpl final : public Watch {
 public:
  using Stream = grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>;

  WatchImpl(WatchCallback cb, std::function<void(std::int64_t)> on_progress)
      : cb_(std::move(cb)), on_progress_(std::move(on_progress)) {}
  ~WatchImpl() override {
    stop();
    if (thread_.joinable()) thread_.join();
  }

  // Opens the stream on ep and waits (bounded) for the server's "created".
  Status start(Endpoint& ep, const pb::WatchRequest& create, Clock::time_point deadline) {
    stream_ = ep.watch->Watch(&ctx_);
    endpoint_ = ep.address;
    thread_ = std::thread([this, create] { run(create); });
    std::unique_lock<std::mutex> lk(mu_);
    if (!cv_.wait_until(lk, deadline, [&] { return created_ || done_; })) {
      lk.unlock();
      ctx_.TryCancel();
      lk.lock();
      cv_.wait(lk, [&] { return done_; });
      return Status(Errc::timed_out, endpoint_ + ": watch not created before the deadline");
    }
    if (!created_) return status_;
    return Status::ok();
  }

  void stop() override {
    stopping_.store(true);
    ctx_.TryCancel();
  }
  bool wait_for(std::chrono::milliseconds d) override {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, d, [&] { return done_; });
  }
  Status status() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return status_;
  }
  std::int64_t watch_id() const override { return watch_id_.load(); }
  Status request_progress() override {
    // gRPC allows one writer at a time besides the reading thread; the run thread writes
    // only the create request (done before start() returns) and WritesDone (under write_mu_).
    std::lock_guard<std::mutex> lk(write_mu_);
    if (writes_done_) return Status(Errc::closed, endpoint_ + ": watch ended");
    pb::WatchRequest req;
    req.mutable_progress_request();
    if (!stream_->Write(req)) return Status(Errc::closed, endpoint_ + ": watch stream closed");
    return Status::ok();
  }

 private:
  void finish(Status s) {
    std::lock_guard<std::mutex> lk(mu_);
    status_ = std::move(s);
    done_ = true;
    cv_.notify_all();
  }

  void run(const pb::WatchRequest& create) {
    Status result;
    if (!stream_->Write(create)) {
      result = Status(Errc::system_error, endpoint_ + ": watch stream closed");
    } else {
      pb::WatchResponse resp;
      while (stream_->Read(&resp)) {
        if (resp.created()) {
          watch_id_.store(resp.watch_id());
          std::lock_guard<std::mutex> lk(mu_);
          created_ = true;
          cv_.notify_all();
        }
        if (resp.canceled()) {
          std::string why = resp.cancel_reason();
          if (resp.compact_revision() > 0) {
            if (why.empty()) why = "etcdserver: mvcc: required revision has been compacted";
            why += " (compact revision " + std::to_string(resp.compact_revision()) + ")";
          }
          if (why.empty()) why = "watch canceled by the server";
          result = Status(Errc::invalid_argument, endpoint_ + ": " + why);
          ctx_.TryCancel();
          break;
        }
        if (!resp.created() && resp.events_size() == 0 && on_progress_) {
          on_progress_(resp.header().revision());
          continue;
        }
        bool keep = true;
        for (const auto& e : resp.events()) {
          if (stopping_.load()) break;
          Event ev;
          ev.type = e.type() == mvccpb::Event::DELETE ? Event::Type::del : Event::Type::put;
          ev.kv = to_kv(e.kv());
          if (e.has_prev_kv()) ev.prev_kv = to_kv(e.prev_kv());
          if (!cb_(ev)) {
            keep = false;
            break;
          }
        }
        if (!keep || stopping_.load()) {
          stopping_.store(true);
          ctx_.TryCancel();
          break;
        }
      }
    }
    {
      std::lock_guard<std::mutex> lk(write_mu_);
      writes_done_ = true;
      stream_->WritesDone();
    }
    grpc::Status s = stream_->Finish();
    if (result.is_ok() && !stopping_.load() && !s.ok()) {
      result = Status(errc_for(s.error_code()), describe(endpoint_, s));
    } else if (result.is_ok() && !stopping_.load()) {
      result = Status(Errc::closed, endpoint_ + ": watch stream ended by the server");
    }
    finish(std::move(result));
  }

  WatchCallback cb_;
  std::function<void(std::int64_t)> on_progress_;
  std::mutex write_mu_;
  bool writes_done_ = false;
  grpc::ClientContext ctx_;
  std::unique_ptr<Stream> stream_;
  std::string endpoint_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool created_ = false;
  bool done_ = false;
  Status status_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> watch_id_{0};
};

// ---- Client -----------------------------------------------------------------------------------
struct Client::Impl {
  Options opts;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  std::atomic<std::size_t> current{0};
  std::uint64_t client_id = random_client_id();
  std::atomic<std::uint64_t> seq{0};
  std::mutex write_mu;  // one mutating request outstanding per client id

  // Runs fn(endpoint, ctx) on the current endpoint, failing over to the next ones. For a
  // mutating call, seq > 0 and the dedup metadata goes with every attempt.
  template <class Fn>
  Status call(std::uint64_t call_seq, Fn&& fn) {
    const std::size_t n = endpoints.size();
    const std::size_t first = current.load(std::memory_order_relaxed) % n;
    std::string errors;
    bool all_unreachable = true;
    bool timed_out = false;
    for (std::size_t i = 0; i < n; ++i) {
      Endpoint& ep = *endpoints[(first + i) % n];
      const auto deadline = Clock::now() + opts.timeout;
      if (auto why = ep.connect(deadline)) {
        errors += (errors.empty() ? "" : "; ") + ep.address + ": " + *why;
        timed_out = timed_out || why->rfind("no connection", 0) == 0;
        continue;  // nothing was sent: safe for reads and writes
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(to_gpr(deadline));
      if (call_seq > 0) {
        ctx.AddMetadata("ringwire-client-id", std::to_string(client_id));
        ctx.AddMetadata("ringwire-seq", std::to_string(call_seq));
      }
      grpc::Status s = fn(ep, ctx);
      if (s.ok()) {
        current.store((first + i) % n, std::memory_order_relaxed);
        return Status::ok();
      }
      all_unreachable = false;
      errors += (errors.empty() ? "" : "; ") + describe(ep.address, s);
      if (!retryable(s.error_code())) return Status(errc_for(s.error_code()), errors);
      if (call_seq > 0 && !opts.server_dedups) {
        return Status(errc_for(s.error_code()),
                      errors + " (write outcome unknown; not retried without server dedup)");
      }
      timed_out = timed_out || s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      if (i + 1 < n) current.store((first + i + 1) % n, std::memory_order_relaxed);
    }
    if (all_unreachable) {
      return Status(timed_out ? Errc::timed_out : Errc::system_error, "cannot reach " + errors);
    }
    return Status(timed_out ? Errc::timed_out : Errc::system_error,
                  "no endpoint answered: " + errors);
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(Options options) {
  tune_grpc_runtime();
  auto eps = parse_endpoints(options.endpoints);
  if (!eps) return eps.status();
  if (options.timeout <= std::chrono::milliseconds(0)) {
    return Status(Errc::invalid_argument, "timeout must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(options);
  impl->opts.endpoints = eps.value();
  for (const auto& e : impl->opts.endpoints) {
    impl->endpoints.push_back(std::make_unique<Endpoint>(e, impl->opts.connection));
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

std::uint64_t Client::client_id() const noexcept {
  return impl_->client_id;
}
std::uint64_t Client::last_seq() const noexcept {
  return impl_->seq.load();
}
std::string Client::current_endpoint() const {
  return impl_->endpoints[impl_->current.load() % impl_->endpoints.size()]->address;
}

Result<GetResult> Client::get(const std::string& key, const GetOptions& o) {
  pb::RangeRequest req;
  if (o.prefix) {
    req.set_key(key.empty() ? std::string(1, '\0') : key);
    req.set_range_end(prefix_range_end(key));
  } else {
    if (key.empty()) return Status(Errc::invalid_argument, "empty key");
    req.set_key(key);
  }
  req.set_serializable(o.serializable);
  req.set_revision(o.revision);
  req.set_limit(o.limit);
  req.set_keys_only(o.keys_only);
  req.set_count_only(o.count_only);
  pb::RangeResponse resp;
  Status s = impl_->call(
      0, [&](Endpoint& ep, grpc::ClientContext& ctx) { return ep.kv->Range(&ctx, req, &resp); });
  if (!s) return s;
  GetResult r;
  r.header = to_header(resp.header());
  r.kvs.reserve(static_cast<std::size_t>(resp.kvs_size()));
  for (const auto& kv : resp.kvs())
    r.kvs.push_back(to_kv(kv));
  r.more = resp.more();
  r.count = resp.count();
  return r;
}

Result<PutResult> Client::put(const std::string& key, const std::string& value,
                              const PutOptions& o) {
  if (key.empty()) return Status(Errc::invalid_argument, "empty key");
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_prev_kv(o.prev_kv);
  pb::PutResponse resp;
  std::lock_guard<std::mutex> lk(impl_->write_mu);
  const std::uint64_t seq = impl_->seq.fetch_add(1) + 1;
  Status s = impl_->call(
      seq, [&](Endpoint& ep, grpc::ClientContext& ctx) { return ep.kv->Put(&ctx, req, &resp); });
  if (!s) return s;
  PutResult r;
  r.header = to_header(resp.header());
  if (resp.has_prev_kv()) r.prev_kv = to_kv(resp.prev_kv());
  return r;
}

Result<DeleteResult> Client::del(const std::string& key, const DeleteOptions& o) {
  pb::DeleteRangeRequest req;
  if (o.prefix) {
    req.set_key(key.empty() ? std::string(1, '\0') : key);
    req.set_range_end(prefix_range_end(key));
  } else {
    if (key.empty()) return Status(Errc::invalid_argument, "empty key");
    req.set_key(key);
  }
  req.set_prev_kv(o.prev_kv);
  pb::DeleteRangeResponse resp;
  std::lock_guard<std::mutex> lk(impl_->write_mu);
  const std::uint64_t seq = impl_->seq.fetch_add(1) + 1;
  Status s = impl_->call(seq, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.kv->DeleteRange(&ctx, req, &resp);
  });
  if (!s) return s;
  DeleteResult r;
  r.header = to_header(resp.header());
  r.deleted = resp.deleted();
  for (const auto& kv : resp.prev_kvs())
    r.prev_kvs.push_back(to_kv(kv));
  return r;
}

Result<CasResult> Client::cas(const CasRequest& c) {
  if (c.key.empty()) return Status(Errc::invalid_argument, "empty key");
  pb::TxnRequest req;
  auto* cmp = req.add_compare();
  cmp->set_key(c.key);
  cmp->set_result(pb::Compare::EQUAL);
  switch (c.expect) {
    case CasRequest::Expect::value:
      cmp->set_target(pb::Compare::VALUE);
      cmp->set_value(c.expected_value);
      break;
    case CasRequest::Expect::mod_revision:
      cmp->set_target(pb::Compare::MOD);
      cmp->set_mod_revision(c.expected_mod_revision);
      break;
    case CasRequest::Expect::absent:
      cmp->set_target(pb::Compare::CREATE);
      cmp->set_create_revision(0);
      break;
  }
  auto* put = req.add_success()->mutable_request_put();
  put->set_key(c.key);
  put->set_value(c.new_value);
  req.add_failure()->mutable_request_range()->set_key(c.key);
  pb::TxnResponse resp;
  std::lock_guard<std::mutex> lk(impl_->write_mu);
  const std::uint64_t seq = impl_->seq.fetch_add(1) + 1;
  Status s = impl_->call(
      seq, [&](Endpoint& ep, grpc::ClientContext& ctx) { return ep.kv->Txn(&ctx, req, &resp); });
  if (!s) return s;
  CasResult r;
  r.header = to_header(resp.header());
  r.succeeded = resp.succeeded();
  if (!r.succeeded && resp.responses_size() > 0 && resp.responses(0).has_response_range() &&
      resp.responses(0).response_range().kvs_size() > 0) {
    r.current = to_kv(resp.responses(0).response_range().kvs(0));
  }
  return r;
}

Result<std::unique_ptr<Watch>> Client::watch(const std::string& key, const WatchOptions& o,
                                             WatchCallback cb) {
  if (!cb) return Status(Errc::invalid_argument, "watch needs a callback");
  pb::WatchRequest req;
  auto* cr = req.mutable_create_request();
  if (o.prefix) {
    cr->set_key(key.empty() ? std::string(1, '\0') : key);
    cr->set_range_end(prefix_range_end(key));
  } else {
    if (key.empty()) return Status(Errc::invalid_argument, "empty key");
    cr->set_key(key);
  }
  cr->set_start_revision(o.start_revision);
  cr->set_prev_kv(o.prev_kv);
  auto& eps = impl_->endpoints;
  const std::size_t n = eps.size();
  const std::size_t first = impl_->current.load() % n;
  std::string errors;
  bool reached = false;
  for (std::size_t i = 0; i < n; ++i) {
    Endpoint& ep = *eps[(first + i) % n];
    const auto deadline = Clock::now() + impl_->opts.timeout;
    if (auto why = ep.connect(deadline)) {
      errors += (errors.empty() ? "" : "; ") + ep.address + ": " + *why;
      continue;
    }
    reached = true;
    auto w = std::make_unique<WatchImpl>(cb, o.on_progress);
    Status s = w->start(ep, req, deadline);
    if (s) {
      impl_->current.store((first + i) % n);
      return std::unique_ptr<Watch>(std::move(w));
    }
    errors += (errors.empty() ? "" : "; ") + s.message();
    if (s.code() == Errc::invalid_argument) return Status(s.code(), errors);
  }
  return Status(Errc::system_error,
                (reached ? "no endpoint answered: " : "cannot reach ") + errors);
}

Result<MembersResult> Client::members() {
  pb::MemberListRequest req;
  pb::MemberListResponse resp;
  Status s = impl_->call(0, [&](Endpoint& ep, grpc::ClientContext& ctx) {
    return ep.cluster->MemberList(&ctx, req, &resp);
  });
  if (!s) return s;
  MembersResult r;
  r.header = to_header(resp.header());
  for (const auto& m : resp.members()) {
    Member x;
    x.id = m.id();
    x.name = m.name();
    x.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
    x.client_urls.assign(m.clienturls().begin(), m.clienturls().end());
    x.is_learner = m.islearner();
    r.members.push_back(std::move(x));
  }
  return r;
}

Result<EndpointStatus> Client::status(const std::string& endpoint) {
  auto parsed = parse_endpoints({endpoint});
  if (!parsed) return parsed.status();
  if (parsed->size() != 1) return Status(Errc::invalid_argument, "status takes one endpoint");
  const std::string& addr = parsed->front();
  Endpoint* ep = nullptr;
  std::unique_ptr<Endpoint> temp;
  for (auto& e : impl_->endpoints) {
    if (e->address == addr) ep = e.get();
  }
  if (ep == nullptr) {
    temp = std::make_unique<Endpoint>(addr, impl_->opts.connection);
    ep = temp.get();
  }
  const auto deadline = Clock::now() + impl_->opts.timeout;
  if (auto why = ep->connect(deadline)) {
    return Status(Errc::system_error, "cannot reach " + addr + ": " + *why);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(to_gpr(deadline));
  pb::StatusRequest req;
  pb::StatusResponse resp;
  grpc::Status gs = ep->maintenance->Status(&ctx, req, &resp);
  if (!gs.ok()) return Status(errc_for(gs.error_code()), describe(addr, gs));
  EndpointStatus r;
  r.endpoint = addr;
  r.header = to_header(resp.header());
  r.version = resp.version();
  r.db_size = resp.dbsize();
  r.db_size_in_use = resp.dbsizeinuse();
  r.leader = resp.leader();
  r.raft_index = resp.raftindex();
  r.raft_term = resp.raftterm();
  r.raft_applied_index = resp.raftappliedindex();
  r.is_learner = resp.islearner();
  r.errors.assign(resp.errors().begin(), resp.errors().end());
  return r;
}

}  // namespace ringwire::kv::client
