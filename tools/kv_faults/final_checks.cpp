#include "final_checks.hpp"

#include <map>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "nodes.hpp"
#include "ringwire/kv/client/client.hpp"
#include "workload.hpp"

namespace ringwire::tools::kv_faults {

namespace kc = ringwire::kv::client;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

FinalResult final_reads(Nodes& nodes, int keys, Clock::time_point epoch,
                        std::chrono::milliseconds timeout, History* h) {
  FinalResult res;
  const auto until = Clock::now() + timeout;
  auto now_ns = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - epoch).count();
  };
  std::vector<std::unique_ptr<kc::Client>> clients;
  for (int i = 0; i < nodes.size(); ++i) {
    kc::Options o;
    o.endpoints = {nodes.spec(i).client_address()};
    o.timeout = 2s;
    o.connection = 2000 + i;
    auto c = kc::Client::create(o);
    clients.push_back(c ? std::move(c.value()) : nullptr);
  }
  // Linearizable reads: recorded like any other op, retried until answered.
  for (int i = 0; i < nodes.size(); ++i) {
    for (int k = 0; k < keys && clients[static_cast<std::size_t>(i)]; ++k) {
      for (;;) {
        Op op;
        op.process = kFinalProcess + i;
        op.node = i;
        op.key = Workload::key_name(k);
        op.kind = OpKind::read;
        op.invoke_ns = now_ns();
        auto r = clients[static_cast<std::size_t>(i)]->get(op.key);
        op.complete_ns = now_ns();
        if (r) {
          op.outcome = Outcome::ok;
          if (!r->kvs.empty()) op.value = r->kvs[0].value;
        } else {
          op.outcome = Outcome::fail;
          op.error = r.status().to_string();
        }
        h->push_back(op);
        if (r) {
          ++res.reads_ok;
          break;
        }
        ++res.reads_failed;
        if (Clock::now() >= until) break;
        std::this_thread::sleep_for(100ms);
      }
    }
  }
  // Convergence: once every node applied the same index, their local states must be equal.
  std::string why = "nodes never reported the same applied index";
  while (Clock::now() < until) {
    std::optional<std::uint64_t> applied;
    bool same = true;
    for (int i = 0; i < nodes.size() && same; ++i) {
      auto s = nodes.status(i);
      same = s.has_value() && (!applied || *applied == s->raft_applied_index);
      if (s) applied = s->raft_applied_index;
    }
    if (!same) {
      std::this_thread::sleep_for(200ms);
      continue;
    }
    std::map<std::string, std::map<int, std::optional<std::string>>> local;
    bool all_answered = true;
    for (int i = 0; i < nodes.size(); ++i) {
      for (int k = 0; k < keys; ++k) {
        kc::GetOptions go;
        go.serializable = true;
        auto r = clients[static_cast<std::size_t>(i)]->get(Workload::key_name(k), go);
        if (!r) {
          all_answered = false;
          continue;
        }
        local[Workload::key_name(k)][i] =
            r->kvs.empty() ? std::nullopt : std::optional<std::string>(r->kvs[0].value);
      }
    }
    if (!all_answered) {
      why = "a node did not answer its local reads";
      std::this_thread::sleep_for(200ms);
      continue;
    }
    res.compared = true;
    res.converged = true;
    for (const auto& [key, per_node] : local) {
      for (const auto& [node, v] : per_node) {
        if (v != per_node.begin()->second) {
          res.converged = false;
          res.convergence_detail += key + ": " + nodes.spec(node).name + " has " +
                                    v.value_or("(absent)") + ", " +
                                    nodes.spec(per_node.begin()->first).name + " has " +
                                    per_node.begin()->second.value_or("(absent)") + "; ";
        }
      }
    }
    if (res.converged)
      res.convergence_detail =
          "every node applied index " + std::to_string(*applied) + " and holds the same keys";
    return res;
  }
  res.convergence_detail = why;
  return res;
}

std::vector<std::string> lost_writes(const History& h) {
  std::vector<std::string> out;
  std::map<std::string, std::optional<std::string>> final_value;
  std::map<std::string, std::vector<const Op*>> writes;  // ops that may have written, per key
  for (const Op& op : h) {
    if (op.process >= kFinalProcess && op.outcome == Outcome::ok && !final_value.count(op.key))
      final_value[op.key] = op.value;
    const bool may_write =
        op.kind == OpKind::write ||
        (op.kind == OpKind::cas && (op.outcome == Outcome::unknown || op.cas_succeeded));
    if (may_write && op.outcome != Outcome::fail) writes[op.key].push_back(&op);
  }
  for (const auto& [key, v] : final_value) {
    const Op* writer = nullptr;
    for (const Op* w : writes[key])
      if (v && w->value == v) writer = w;
    if (v && writer == nullptr) {
      out.push_back(key + ": final value " + *v + " was never written");
      continue;
    }
    // An acknowledged write that started after the final value's writer finished must have
    // replaced it (values are unique, so the final value names its writer).
    const Op* latest = nullptr;
    for (const Op* w : writes[key]) {
      if (w->outcome != Outcome::ok) continue;
      const bool after = writer == nullptr ||
                         (writer->outcome == Outcome::ok && w->invoke_ns > writer->complete_ns);
      if (after && (latest == nullptr || w->complete_ns > latest->complete_ns)) latest = w;
    }
    if (latest != nullptr) {
      out.push_back(key + ": acknowledged " + kind_name(latest->kind) + " of " +
                    latest->value.value_or("") + " (client " + std::to_string(latest->process) +
                    ", done at " + std::to_string(latest->complete_ns / 1000000) +
                    " ms) is lost: the final value is " + v.value_or("(absent)"));
    }
  }
  return out;
}

}  // namespace ringwire::tools::kv_faults
