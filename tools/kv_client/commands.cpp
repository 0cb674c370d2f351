// kv_client's one-shot commands: put, get, del, txn, watch, members, status.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>

#include "common.hpp"
#include "ringwire/kv/client/read_through.hpp"

namespace ringwire::tools::kv {

namespace cache = ringwire::kv::cache;

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

namespace {

// A plain single-key read goes through the cache; anything else (prefix, revision, limits,
// serializable) is a query the cache cannot answer and goes to the cluster.
bool cacheable(const GetArgs& a) {
  const auto& o = a.opts;
  return !o.prefix && !o.serializable && o.revision == 0 && o.limit == 0 && !o.keys_only &&
         !o.count_only;
}

}  // namespace

int run_get(const Global& g, const GetArgs& a) {
  auto c = connect(g);
  if (!c) return fail(g, c.status().message());
  std::optional<Json> cache_info;
  core::Result<kc::GetResult> r = core::Status(core::Errc::invalid_argument, "not read");
  if (!g.cache.empty() && cacheable(a)) {
    kc::ReadThrough rt(*c.value(), g.cache);
    kc::Freshness f;
    f.linearizable = a.linearizable;
    f.max_staleness = std::chrono::nanoseconds(static_cast<long long>(g.max_staleness_ms * 1e6));
    auto got = rt.get(a.key, f);
    if (!got) return fail(g, got.status().message());
    const char* outcome = a.linearizable ? "linearizable" : cache::outcome_name(got->outcome);
    cache_info = Json{{"name", g.cache},
                      {"hit", got->from_cache},
                      {"outcome", outcome},
                      {"revision", got->cache_revision},
                      {"age_us", got->cache_age_ns / 1000}};
    if (!g.json && !rt.cache().attached()) {
      std::fprintf(stderr, "cache %s: %s (%s)\n", g.cache.c_str(), outcome,
                   rt.cache().attach_error().c_str());
    } else if (!g.json) {
      std::fprintf(stderr, "cache %s: %s (cache revision %lld, confirmed %.3f ms ago)\n",
                   g.cache.c_str(), outcome, static_cast<long long>(got->cache_revision),
                   static_cast<double>(got->cache_age_ns) / 1e6);
    }
    r = std::move(got->result);
  } else {
    r = c.value()->get(a.key, a.opts);
  }
  if (!r) return fail(g, r.status().message());
  const bool found = a.opts.count_only ? r->count > 0 : !r->kvs.empty();
  if (g.json) {
    Json kvs = Json::array();
    for (const auto& kv : r->kvs) {
      Json j = kv_json(kv);
      if (a.opts.keys_only) j.erase("value");
      kvs.push_back(std::move(j));
    }
    Json j{{"ok", true}, {"found", found},    {"header", header_json(r->header)},
           {"kvs", kvs}, {"count", r->count}, {"more", r->more}};
    if (cache_info) j["cache"] = *cache_info;
    emit(j);
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

namespace ringwire::tools::kv {

int run_cache_stats(const Global& g) {
  if (g.cache.empty()) return fail(g, "stats needs --cache NAME");
  cache::ReaderOptions ro;
  ro.request_fills = false;
  cache::CacheReader reader(g.cache, ro);
  auto s = reader.stats();
  if (!s) return fail(g, "cache '" + g.cache + "': " + reader.attach_error());
  // Lag in revisions needs the cluster; the cache's own figures do not.
  std::optional<std::int64_t> cluster_rev;
  auto co = g.client_options();
  co.timeout = std::min(co.timeout, std::chrono::milliseconds(1000));
  if (auto c = kc::Client::create(co)) {
    kc::GetOptions o;
    o.count_only = true;
    if (auto r = c.value()->get(std::string(1, '\0'), o)) cluster_rev = r->header.revision;
  }
  const bool confirmed = s->age_ms != UINT64_MAX;
  if (g.json) {
    Json j{{"ok", true},
           {"name", s->name},
           {"agent_state", s->agent_state},
           {"agent_pid", s->agent_pid},
           {"agent_alive", s->agent_alive},
           {"revision", s->applied_revision},
           {"confirmed_ms_ago", confirmed ? Json(s->age_ms) : Json(nullptr)},
           {"entries", s->entries},
           {"capacity", s->capacity},
           {"slots", s->slots},
           {"tombstones", s->tombstones},
           {"key_max", s->key_max},
           {"value_max", s->value_max},
           {"hits", s->hits},
           {"misses", s->misses},
           {"fallbacks", s->fallbacks},
           {"hit_rate", s->hit_rate},
           {"readers", s->readers},
           {"events_applied", s->events_applied},
           {"fills", s->fills},
           {"fill_requests", s->fill_requests},
           {"evictions", s->evictions},
           {"clears", s->clears},
           {"lock_recoveries", s->lock_recoveries},
           {"takeovers", s->takeovers},
           {"reconnects", s->reconnects}};
    j["cluster_revision"] = cluster_rev ? Json(*cluster_rev) : Json(nullptr);
    j["revision_lag"] = cluster_rev ? Json(*cluster_rev - s->applied_revision) : Json(nullptr);
    emit(j);
    return core::kExitOk;
  }
  std::printf("cache %s: agent %s (pid %d, %s)\n", s->name.c_str(), s->agent_state.c_str(),
              s->agent_pid, s->agent_alive ? "alive" : "dead");
  std::printf("hit rate %.1f%% (%llu hits, %llu misses, %llu fallbacks to RPC)\n",
              100.0 * s->hit_rate, static_cast<unsigned long long>(s->hits),
              static_cast<unsigned long long>(s->misses),
              static_cast<unsigned long long>(s->fallbacks));
  std::printf("entries %llu / %llu (slots %llu, keys <= %u B, values <= %u B)\n",
              static_cast<unsigned long long>(s->entries),
              static_cast<unsigned long long>(s->capacity),
              static_cast<unsigned long long>(s->slots), s->key_max, s->value_max);
  if (cluster_rev) {
    std::printf("revision %lld (cluster %lld, lag %lld revisions)",
                static_cast<long long>(s->applied_revision), static_cast<long long>(*cluster_rev),
                static_cast<long long>(*cluster_rev - s->applied_revision));
  } else {
    std::printf("revision %lld (cluster unreachable)", static_cast<long long>(s->applied_revision));
  }
  if (confirmed)
    std::printf(", confirmed %llu ms ago\n", static_cast<unsigned long long>(s->age_ms));
  else
    std::printf(", never confirmed\n");
  std::printf(
      "events %llu, fills %llu (requests %llu), evictions %llu, clears %llu, lock "
      "recoveries %llu, takeovers %llu, reconnects %llu\n",
      static_cast<unsigned long long>(s->events_applied), static_cast<unsigned long long>(s->fills),
      static_cast<unsigned long long>(s->fill_requests),
      static_cast<unsigned long long>(s->evictions), static_cast<unsigned long long>(s->clears),
      static_cast<unsigned long long>(s->lock_recoveries),
      static_cast<unsigned long long>(s->takeovers),
      static_cast<unsigned long long>(s->reconnects));
  return core::kExitOk;
}

}  // namespace ringwire::tools::kv
