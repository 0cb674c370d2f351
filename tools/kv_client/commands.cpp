// kv_client's one-shot commands: put, get, del, txn, watch, members, status.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "common.hpp"

namespace ringwire::tools::kv {

std::string hex_id(std::uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

namespace {

core::Result<std::unique_ptr<kc::Client>> connect(const Global& g) {
  return kc::Client::create(g.client_options());
}

int not_found(const std::string& key) {
  std::fprintf(stderr, "key not found: %s\n", key.c_str());
  return core::kExitNegative;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

int run_get(const Global& g, const GetArgs& a) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  auto r = c.value()->get(a.key, a.opts);
  if (!r) return fail(g, r.status().message());
  const bool found = a.opts.count_only ? r->count > 0 : !r->kvs.empty();
  if (g.json) {
    Json kvs = Json::array();
    for (const auto& kv : r->kvs) {
      Json j = kv_json(kv);
      if (a.opts.keys_only) j.erase("value");
      kvs.push_back(std::move(j));
    }
    emit(Json{{"ok", true},
              {"found", found},
              {"header", header_json(r->header)},
              {"kvs", kvs},
              {"count", r->count},
              {"more", r->more}});
  } else if (a.opts.count_only) {
    std::printf("%lld\n", static_cast<long long>(r->count));
  } else {
    for (const auto& kv : r->kvs)
      print_kv(kv, !a.opts.keys_only);
  }
  std::fflush(stdout);
  return found ? core::kExitOk : not_found(a.key);
}

int run_put(const Global& g, const PutArgs& a) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  auto r = c.value()->put(a.key, a.value, kc::PutOptions{a.prev_kv});
  if (!r) return fail(g, r.status().message());
  if (g.json) {
    Json j{{"ok", true}, {"header", header_json(r->header)}, {"revision", r->header.revision}};
    if (a.prev_kv) j["prev_kv"] = r->prev_kv ? kv_json(*r->prev_kv) : Json(nullptr);
    emit(j);
  } else {
    std::printf("OK\n");
    if (r->prev_kv) print_kv(*r->prev_kv);
  }
  return core::kExitOk;
}

int run_del(const Global& g, const DelArgs& a) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  auto r = c.value()->del(a.key, kc::DeleteOptions{a.prefix, a.prev_kv});
  if (!r) return fail(g, r.status().message());
  if (g.json) {
    Json j{{"ok", true}, {"header", header_json(r->header)}, {"deleted", r->deleted}};
    if (a.prev_kv) {
      Json prev = Json::array();
      for (const auto& kv : r->prev_kvs)
        prev.push_back(kv_json(kv));
      j["prev_kvs"] = prev;
    }
    emit(j);
  } else {
    std::printf("%lld\n", static_cast<long long>(r->deleted));
    for (const auto& kv : r->prev_kvs)
      print_kv(kv);
  }
  return core::kExitOk;
}

int run_txn(const Global& g, const TxnArgs& a) {
  const int given = static_cast<int>(!a.expect_value.empty()) +
                    static_cast<int>(!a.expect_mod_rev.empty()) + static_cast<int>(a.expect_absent);
  if (given != 1) {
    return fail(g, "txn needs exactly one of --expect-value, --expect-mod-rev, --expect-absent");
  }
  kc::CasRequest req;
  req.key = a.key;
  req.new_value = a.put_value;
  if (!a.expect_value.empty()) {
    req.expect = kc::CasRequest::Expect::value;
    req.expected_value = a.expect_value.front();
  } else if (!a.expect_mod_rev.empty()) {
    req.expect = kc::CasRequest::Expect::mod_revision;
    req.expected_mod_revision = a.expect_mod_rev.front();
  } else {
    req.expect = kc::CasRequest::Expect::absent;
  }
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  auto r = c.value()->cas(req);
  if (!r) return fail(g, r.status().message());
  if (g.json) {
    emit(Json{{"ok", true},
              {"succeeded", r->succeeded},
              {"header", header_json(r->header)},
              {"revision", r->header.revision},
              {"current", r->current ? kv_json(*r->current) : Json(nullptr)}});
  } else {
    std::printf("%s\n", r->succeeded ? "SUCCEEDED" : "FAILED");
  }
  return r->succeeded ? core::kExitOk : core::kExitNegative;
}

int run_watch(const Global& g, const WatchArgs& a) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  std::mutex mu;
  std::uint64_t seen = 0;
  Json events = Json::array();
  auto on_event = [&](const kc::Event& ev) {
    std::lock_guard<std::mutex> lk(mu);
    const char* type = ev.type == kc::Event::Type::put ? "PUT" : "DELETE";
    if (g.json) {
      Json j{{"type", type},
             {"key", ev.kv.key},
             {"value", ev.kv.value},
             {"mod_revision", ev.kv.mod_revision},
             {"create_revision", ev.kv.create_revision},
             {"version", ev.kv.version}};
      if (ev.prev_kv) j["prev_kv"] = kv_json(*ev.prev_kv);
      events.push_back(std::move(j));
    } else {
      std::printf("%s\n", type);
      if (ev.prev_kv) print_kv(*ev.prev_kv);
      print_kv(ev.kv);
      std::fflush(stdout);
    }
    ++seen;
    return a.count == 0 || seen < a.count;
  };
  kc::WatchOptions wo;
  wo.prefix = a.prefix;
  wo.prev_kv = a.prev_kv;
  wo.start_revision = a.rev;
  auto w = c.value()->watch(a.key, wo, on_event);
  if (!w) return fail(g, w.status().message());
  const auto limit = std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000.0));
  const bool ended = w.value()->wait_for(limit);
  if (!ended) {
    w.value()->stop();
    if (!w.value()->wait_for(std::chrono::seconds(5))) {
      return fail(g, "watch did not stop within 5 s after the timeout");
    }
  }
  core::Status st = w.value()->status();
  std::lock_guard<std::mutex> lk(mu);
  if (!st.is_ok()) return fail(g, st.message());
  const bool complete = a.count == 0 || seen >= a.count;
  if (g.json) {
    emit(Json{{"ok", true},
              {"events", events},
              {"count", seen},
              {"timed_out", !ended},
              {"complete", complete}});
  }
  if (!complete) {
    std::fprintf(stderr, "watch: %llu of %llu events before the %.3g s timeout\n",
                 static_cast<unsigned long long>(seen), static_cast<unsigned long long>(a.count),
                 a.timeout_s);
    return core::kExitNegative;
  }
  return core::kExitOk;
}

int run_members(const Global& g) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  auto r = c.value()->members();
  if (!r) return fail(g, r.status().message());
  if (g.json) {
    Json ms = Json::array();
    for (const auto& m : r->members) {
      ms.push_back(Json{{"id", m.id},
                        {"id_hex", hex_id(m.id)},
                        {"name", m.name},
                        {"peer_urls", m.peer_urls},
                        {"client_urls", m.client_urls},
                        {"is_learner", m.is_learner}});
    }
    emit(Json{{"ok", true}, {"header", header_json(r->header)}, {"members", ms}});
    return core::kExitOk;
  }
  std::vector<std::vector<std::string>> rows{{"ID", "NAME", "PEER URLS", "CLIENT URLS", "LEARNER"}};
  for (const auto& m : r->members) {
    rows.push_back({hex_id(m.id), m.name.empty() ? "(unstarted)" : m.name, join(m.peer_urls),
                    join(m.client_urls), m.is_learner ? "true" : "false"});
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i)
      w[i] = std::max(w[i], row[i].size());
  }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i + 1 < row.size()) {
        std::printf("%-*s  ", static_cast<int>(w[i]), row[i].c_str());
      } else {
        std::printf("%s\n", row[i].c_str());
      }
    }
  }
  return core::kExitOk;
}

int run_status(const Global& g) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  Json eps = Json::array();
  std::vector<std::vector<std::string>> rows{{"ENDPOINT", "MEMBER ID", "LEADER ID", "IS LEADER",
                                              "RAFT TERM", "RAFT INDEX", "APPLIED INDEX",
                                              "REVISION", "DB SIZE"}};
  std::size_t reachable = 0;
  std::string last_error;
  std::vector<std::string> unreachable;
  for (const auto& ep : g.servers) {
    auto r = c.value()->status(ep);
    if (!r) {
      last_error = r.status().message();
      eps.push_back(Json{{"endpoint", ep}, {"reachable", false}, {"error", last_error}});
      rows.push_back({ep, "unreachable", "-", "-", "-", "-", "-", "-", "-"});
      unreachable.push_back(last_error);
      continue;
    }
    ++reachable;
    const auto& s = r.value();
    const bool is_leader = s.leader != 0 && s.leader == s.header.member_id;
    eps.push_back(Json{{"endpoint", ep},
                       {"reachable", true},
                       {"member_id", s.header.member_id},
                       {"member_id_hex", hex_id(s.header.member_id)},
                       {"leader", s.leader},
                       {"leader_hex", hex_id(s.leader)},
                       {"is_leader", is_leader},
                       {"raft_term", s.raft_term},
                       {"raft_index", s.raft_index},
                       {"raft_applied_index", s.raft_applied_index},
                       {"revision", s.header.revision},
                       {"db_size", s.db_size},
                       {"version", s.version},
                       {"is_learner", s.is_learner},
                       {"errors", s.errors}});
    rows.push_back({ep, hex_id(s.header.member_id), hex_id(s.leader), is_leader ? "true" : "false",
                    std::to_string(s.raft_term), std::to_string(s.raft_index),
                    std::to_string(s.raft_applied_index), std::to_string(s.header.revision),
                    std::to_string(s.db_size)});
  }
  if (reachable == 0) {
    if (g.json) {
      emit(Json{{"ok", false},
                {"exit_code", core::kExitInvalid},
                {"endpoints", eps},
                {"error", last_error}});
      std::fprintf(stderr, "ERROR: invalid input or unavailable IPC resource: %s\n",
                   last_error.c_str());
      return core::kExitInvalid;
    }
    return fail(g, last_error);
  }
  for (const auto& e : unreachable)
    std::fprintf(stderr, "status: %s\n", e.c_str());
  if (g.json) {
    emit(Json{{"ok", true}, {"endpoints", eps}});
    return core::kExitOk;
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i)
      w[i] = std::max(w[i], row[i].size());
  }
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i + 1 < row.size()) {
        std::printf("%-*s  ", static_cast<int>(w[i]), row[i].c_str());
      } else {
        std::printf("%s\n", row[i].c_str());
      }
    }
  }
  return core::kExitOk;
}

}  // namespace ringwire::tools::kv
