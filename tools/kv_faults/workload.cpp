#include "workload.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <random>

#include <spdlog/spdlog.h>

#include "ringwire/kv/client/client.hpp"

namespace ringwire::tools::kv_faults {

namespace kc = ringwire::kv::client;

Workload::Workload(WorkloadOptions o, Clock::time_point epoch)
    : opts_(std::move(o)), epoch_(epoch), per_client_(static_cast<std::size_t>(opts_.clients)) {}

void Workload::start() {
  for (int c = 0; c < opts_.clients; ++c)
    threads_.emplace_back([this, c] { run(c); });
}

void Workload::stop() {
  stop_.store(true);
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

History Workload::take_history() {
  History h;
  for (auto& p : per_client_) {
    h.insert(h.end(), std::make_move_iterator(p.begin()), std::make_move_iterator(p.end()));
    p.clear();
  }
  std::stable_sort(h.begin(), h.end(),
                   [](const Op& a, const Op& b) { return a.invoke_ns < b.invoke_ns; });
  return h;
}

namespace {

// "cannot reach ..." is the client's word for "no endpoint took the request": nothing was sent.
bool certainly_not_sent(const core::Status& s) {
  return s.code() == core::Errc::invalid_argument || s.message().rfind("cannot reach", 0) == 0;
}

}  // namespace

void Workload::run(int client) {
  History& out = per_client_[static_cast<std::size_t>(client)];
  const int node = client % static_cast<int>(opts_.endpoints.size());
  kc::Options o;
  o.endpoints = {opts_.endpoints[static_cast<std::size_t>(node)]};
  o.timeout = opts_.op_timeout;
  o.connection = client;
  auto created = kc::Client::create(o);
  if (!created) {
    spdlog::error("client {}: {}", client, created.status().to_string());
    return;
  }
  auto cli = std::move(created.value());
  std::mt19937_64 rng(opts_.seed * 1000003u + static_cast<std::uint64_t>(client));
  std::map<std::string, std::optional<std::string>> last_seen;  // per key, what we saw last
  auto now = [this] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - epoch_).count();
  };
  std::uint64_t n = 0;
  std::uint64_t n_errors = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    Op op;
    op.process = client;
    op.node = node;
    op.key = key_name(static_cast<int>(rng() % static_cast<std::uint64_t>(opts_.keys)));
    const auto dice = rng() % 100;
    op.kind = dice < 50 ? OpKind::read : dice < 80 ? OpKind::write : OpKind::cas;
    if (op.kind == OpKind::read && opts_.read_node >= 0 && node != opts_.read_node) {
      op.kind = dice < 25 ? OpKind::write : OpKind::cas;
    }
    if (op.kind != OpKind::read) {
      op.value = "c" + std::to_string(client) + "-" + std::to_string(++n);  // unique per run
    }
    if (op.kind == OpKind::cas) op.expected = last_seen[op.key];
    op.invoke_ns = now();
    core::Status st;
    switch (op.kind) {
      case OpKind::read: {
        auto r = cli->get(op.key);
        st = r ? core::Status::ok() : r.status();
        if (r) {
          if (!r->kvs.empty()) op.value = r->kvs[0].value;
          last_seen[op.key] = op.value;
        }
        break;
      }
      case OpKind::write: {
        auto r = cli->put(op.key, *op.value);
        st = r ? core::Status::ok() : r.status();
        if (r) last_seen[op.key] = op.value;
        break;
      }
      case OpKind::cas: {
        kc::CasRequest req;
        req.key = op.key;
        req.expect = op.expected ? kc::CasRequest::Expect::value : kc::CasRequest::Expect::absent;
        req.expected_value = op.expected.value_or("");
        req.new_value = *op.value;
        auto r = cli->cas(req);
        st = r ? core::Status::ok() : r.status();
        if (r) {
          op.cas_succeeded = r->succeeded;
          if (!r->succeeded && r->current) op.observed = r->current->value;
          last_seen[op.key] = r->succeeded ? op.value : op.observed;
        }
        break;
      }
    }
    op.complete_ns = now();
    if (st) {
      op.outcome = Outcome::ok;
    } else {
      op.error = st.to_string();
      // A read has no effect, so an unanswered one is simply a failed one; a write that may
      // have been sent may still take effect.
      op.outcome =
          (op.kind == OpKind::read || certainly_not_sent(st)) ? Outcome::fail : Outcome::unknown;
      if (op.kind == OpKind::read) op.value.reset();
    }
    const bool failed = op.outcome != Outcome::ok;
    if (failed && n_errors++ % 100 == 0) spdlog::debug("client {}: {}", client, op.error);
    out.push_back(std::move(op));
    ops_.fetch_add(1, std::memory_order_relaxed);
    // Do not spin on a node that refuses at once (killed, or its port not open yet).
    if (failed) std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 30));
  }
}

}  // namespace ringwire::tools::kv_faults
