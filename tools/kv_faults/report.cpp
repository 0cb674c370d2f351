#include "report.hpp"

#include <cstdio>
#include <fstream>
#include <ostream>

#include <spdlog/spdlog.h>

#include "ringwire/core/status.hpp"

namespace ringwire::tools::kv_faults {

using Json = nlohmann::json;

namespace {

Json op_counts(const History& h) {
  std::map<std::string, std::map<std::string, int>> by_kind;
  std::map<std::string, int> total;
  for (const Op& op : h) {
    ++by_kind[kind_name(op.kind)][outcome_name(op.outcome)];
    ++total[outcome_name(op.outcome)];
  }
  return {{"total", h.size()},
          {"ok", total["ok"]},
          {"fail", total["fail"]},
          {"unknown", total["unknown"]},
          {"by_kind", by_kind}};
}

Json check_json(const CheckReport& c) {
  Json keys = Json::array();
  for (const auto& k : c.keys) {
    Json j = {{"key", k.key},
              {"verdict", verdict_name(k.verdict)},
              {"ops", k.ops},
              {"checked_ops", k.checked_ops},
              {"unknown_kept", k.unknown_kept},
              {"steps", k.steps},
              {"memo_entries", k.memo_entries}};
    if (k.verdict == Verdict::not_linearizable) {
      j["stuck_op"] = k.stuck_op;
      j["window_ops"] = k.window.size();
      j["window_from_any_value"] = k.window_from_any_value;
    }
    keys.push_back(j);
  }
  return {{"verdict", verdict_name(c.verdict)}, {"keys", keys}};
}

// The failing windows, op by op, for failure.txt.
void write_windows(std::ostream& f, const History& h, const CheckReport& c) {
  for (const auto& k : c.keys) {
    if (k.verdict != Verdict::not_linearizable) continue;
    f << "key " << k.key << ": not linearizable. No linearization places op #" << k.stuck_op
      << " after the ops before it:\n  " << to_json(h[k.stuck_op]).dump() << "\n";
    f << "smallest window ending there that is not linearizable on its own ("
      << (k.window_from_any_value ? "from any initial value" : "from the initial, absent value")
      << "), " << k.window.size() << " ops, by invoke time:\n";
    for (std::size_t i : k.window)
      f << "  #" << i << " " << to_json(h[i]).dump() << "\n";
  }
}

}  // namespace

int write_report(const RunConfig& cfg, const History& h, const RunResult& r, std::ostream& out) {
  const bool linearizable = r.check.verdict == Verdict::linearizable;
  // Members that never reached one applied index in time were not compared: no verdict on
  // convergence (exit 1), unlike members that did and differ (exit 3).
  const bool diverged = r.final.compared && !r.final.converged;
  const bool safety_failed =
      r.check.verdict == Verdict::not_linearizable || !r.lost.empty() || diverged;
  int rc = core::kExitOk;
  if (safety_failed) {
    rc = core::kExitVerifyFailed;
  } else if (!linearizable || !r.unexpected_exits.empty() || r.interrupted || !r.final.compared) {
    rc = core::kExitNegative;
  }
  const std::string verdict = safety_failed ? "FAILED" : rc != 0 ? "NO VERDICT" : "PASSED";
  Json faults = Json::object();
  for (const auto& [k, n] : r.faults)
    faults[k] = n;
  Json summary = {{"ok", rc == 0},
                  {"exit_code", rc},
                  {"verdict", verdict},
                  {"seed", cfg.seed},
                  {"nodes", cfg.nodes},
                  {"duration_s", cfg.duration_s},
                  {"clients", cfg.clients},
                  {"keys", cfg.keys},
                  {"unsafe_local_reads", cfg.unsafe},
                  {"fsync", !cfg.no_fsync},
                  {"server_args", cfg.server_args},
                  {"network", cfg.network},
                  {"netem", cfg.netem},
                  {"fault_kinds", cfg.faults},
                  {"faults", faults},
                  {"ops", op_counts(h)},
                  {"checker", check_json(r.check)},
                  {"lost_writes", r.lost},
                  {"converged", r.final.converged},
                  {"convergence_compared", r.final.compared},
                  {"convergence", r.final.convergence_detail},
                  {"healthy_after_heal", r.healthy_after_heal},
                  {"unexpected_exits", r.unexpected_exits},
                  {"disk_fault_exits", r.expected_exits},
                  {"interrupted", r.interrupted},
                  {"out_dir", cfg.out_dir}};

  {
    std::ofstream f(cfg.out_dir + "/history.jsonl");
    write_history(f, h);
  }
  {
    std::ofstream f(cfg.out_dir + "/faults.jsonl");
    for (const auto& e : r.fault_events)
      f << to_json(e).dump() << "\n";
  }
  if (safety_failed) {
    std::ofstream f(cfg.out_dir + "/failure.txt");
    f << "kv_faults seed " << cfg.seed << ": " << verdict << "\n";
    for (const auto& l : r.lost)
      f << "lost write: " << l << "\n";
    if (diverged) f << "not converged: " << r.final.convergence_detail << "\n";
    write_windows(f, h, r.check);
    summary["failure_file"] = cfg.out_dir + "/failure.txt";
  }
  {
    std::ofstream f(cfg.out_dir + "/summary.json");
    f << summary.dump(2) << "\n";
  }

  // Human summary on stderr (stdout is for --json).
  const std::string convergence = r.interrupted ? "not checked (interrupted)"
                                  : !r.final.compared
                                      ? "not compared: " + r.final.convergence_detail
                                  : r.final.converged ? "yes"
                                                      : "NO: " + r.final.convergence_detail;
  const Json& ops = summary["ops"];
  std::string fault_list;
  int fault_total = 0;
  for (const auto& [k, n] : r.faults) {
    fault_list += (fault_list.empty() ? "" : ", ") + k + " " + std::to_string(n);
    fault_total += n;
  }
  std::fprintf(stderr,
               "kv_faults: seed %llu, %d nodes, %.0f s%s\n"
               "  ops: %zu (ok %d, fail %d, unknown %d)\n"
               "  faults: %d (%s)\n"
               "  checker: %s over %zu keys; lost writes: %zu; converged: %s\n"
               "  verdict: %s (exit %d)%s\n",
               static_cast<unsigned long long>(cfg.seed), cfg.nodes, cfg.duration_s,
               cfg.unsafe ? ", UNSAFE local reads" : "", h.size(), ops["ok"].get<int>(),
               ops["fail"].get<int>(), ops["unknown"].get<int>(), fault_total,
               fault_list.empty() ? "none" : fault_list.c_str(), verdict_name(r.check.verdict),
               r.check.keys.size(), r.lost.size(), convergence.c_str(), verdict.c_str(), rc,
               safety_failed ? (", details in " + cfg.out_dir + "/failure.txt").c_str() : "");
  for (const auto& l : r.lost)
    std::fprintf(stderr, "  LOST: %s\n", l.c_str());
  for (const auto& e : r.unexpected_exits)
    std::fprintf(stderr, "  node exit: %s\n", e.c_str());
  if (safety_failed)
    std::fprintf(stderr, "  reproduce with --seed %llu (history in %s/history.jsonl)\n",
                 static_cast<unsigned long long>(cfg.seed), cfg.out_dir.c_str());
  if (cfg.json) out << summary.dump(-1, ' ', false, Json::error_handler_t::replace) << std::endl;
  return rc;
}

int check_file_only(const std::string& path, const CheckOptions& o, bool json,
                    const std::function<int(const std::string&)>& invalid) {
  std::ifstream in(path);
  if (!in) return invalid("cannot read " + path);
  History h;
  try {
    h = read_history(in);
  } catch (const std::exception& e) {
    return invalid(path + ": " + e.what());
  }
  const CheckReport c = check_history(h, o);
  const int rc = c.verdict == Verdict::linearizable       ? core::kExitOk
                 : c.verdict == Verdict::not_linearizable ? core::kExitVerifyFailed
                                                          : core::kExitNegative;
  std::fprintf(stderr, "%s: %zu ops, %zu keys: %s\n", path.c_str(), h.size(), c.keys.size(),
               verdict_name(c.verdict));
  if (c.verdict == Verdict::not_linearizable) {
    std::ofstream f(path + ".failure.txt");
    write_windows(f, h, c);
    std::fprintf(stderr, "failing window in %s.failure.txt\n", path.c_str());
  }
  if (json) {
    Json j = {{"ok", rc == 0}, {"exit_code", rc}, {"ops", h.size()}, {"checker", check_json(c)}};
    std::printf("%s\n", j.dump().c_str());
  }
  return rc;
}

}  // namespace ringwire::tools::kv_faults
