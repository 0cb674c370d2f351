// kv_client: command-line client for kv_server (and any etcd v3 server: same gRPC API).
//   kv_client --server=localhost:9001 put k v
// Subcommands put, get, del, txn, watch, members, status, stats, bench; --json for machine
// output; --cache NAME reads through the host's kv_cache.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "common.hpp"

namespace {

constexpr const char* kFooter =
    "Exit codes: 0 ok; 1 negative answer (key not found, txn compare failed, watch saw fewer\n"
    "than --count events); 2 invalid input or server unavailable (stderr starts with\n"
    "\"ERROR: invalid input or unavailable IPC resource\"); 3 verification failed (bench: a\n"
    "response was an error or wrong).\n"
    "Mutating requests carry ringwire-client-id / ringwire-seq metadata so kv_server applies\n"
    "retries once; on UNAVAILABLE / deadline / connection failure the next --server is tried.";

}  // namespace

int main(int argc, char** argv) {
  using namespace ringwire::tools::kv;
  namespace core = ringwire::core;

  Global g;
  std::vector<std::string> servers;
  CLI::App app{"kv_client: talk to a ringwire kv_server cluster (or etcd v3: the same gRPC API)."};
  app.set_version_flag("--version", "kv_client (ringwire) 0.1.0");
  app.footer(kFooter);
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--server,-s", servers,
                 "endpoint host:port; repeat or comma-separate for several (default "
                 "127.0.0.1:9001)")
      ->delimiter(',');
  app.add_option("--timeout", g.timeout_s, "per-request deadline in seconds (default 5)")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_flag("--json", g.json, "print exactly one JSON object on stdout");
  app.add_option("--cache", g.cache,
                 "get: read through this host's kv_cache NAME (hit or RPC); stats: the cache "
                 "to report on");
  app.add_option("--max-staleness-ms", g.max_staleness_ms,
                 "with --cache: serve from the cache only if it was confirmed within this bound "
                 "(default 100)")
      ->check(CLI::Range(0.0, 3600000.0));

  PutArgs put;
  auto* sp = app.add_subcommand("put", "put KEY VALUE; prints OK");
  sp->add_option("key", put.key, "key")->required();
  sp->add_option("value", put.value, "value")->required();
  sp->add_flag("--prev-kv", put.prev_kv, "also print the previous key and value");

  GetArgs get;
  auto* sg = app.add_subcommand(
      "get", "get KEY: prints key and value lines per match; exit 1 when nothing matched");
  sg->add_option("key", get.key, "key (or prefix with --prefix)")->required();
  sg->add_flag("--prefix", get.opts.prefix, "every key starting with KEY");
  sg->add_flag("--serializable", get.opts.serializable,
               "read the contacted member's state (no quorum round; may be stale)");
  sg->add_option("--rev", get.opts.revision, "read at this store revision (0: newest)")
      ->check(CLI::NonNegativeNumber);
  sg->add_option("--limit", get.opts.limit, "at most N keys (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  sg->add_flag("--keys-only", get.opts.keys_only, "print keys only");
  sg->add_flag("--count-only", get.opts.count_only, "print the number of matching keys");
  sg->add_flag("--linearizable", get.linearizable,
               "with --cache: always ask the cluster (the cache is not consulted)");

  DelArgs del;
  auto* sd = app.add_subcommand("del", "del KEY: prints the number of deleted keys");
  sd->add_option("key", del.key, "key (or prefix with --prefix)")->required();
  sd->add_flag("--prefix", del.prefix, "every key starting with KEY");
  sd->add_flag("--prev-kv", del.prev_kv, "also print the deleted keys and values");

  TxnArgs txn;
  auto* st = app.add_subcommand(
      "txn",
      "compare-and-swap: if KEY matches the expectation, put the new value; prints "
      "SUCCEEDED or FAILED (exit 1)");
  st->add_option("--key", txn.key, "key")->required();
  auto* ev =
      st->add_option("--expect-value", txn.expect_value, "current value must be this")->expected(1);
  auto* em = st->add_option("--expect-mod-rev", txn.expect_mod_rev,
                            "key's mod revision must be this (0: absent)")
                 ->expected(1);
  auto* ea = st->add_flag("--expect-absent", txn.expect_absent, "key must not exist (create)");
  ev->excludes(em)->excludes(ea);
  em->excludes(ea);
  st->add_option("--put-value", txn.put_value, "value to put when the compare holds")->required();

  WatchArgs watch;
  auto* sw = app.add_subcommand(
      "watch",
      "watch KEY: prints PUT/DELETE, key, value lines per event until --count events "
      "or --timeout");
  sw->add_option("key", watch.key, "key (or prefix with --prefix)")->required();
  sw->add_flag("--prefix", watch.prefix, "every key starting with KEY");
  sw->add_option("--rev", watch.rev, "start at this revision (0: from now)")
      ->check(CLI::NonNegativeNumber);
  sw->add_flag("--prev-kv", watch.prev_kv, "also print the previous key and value");
  sw->add_option("--count", watch.count, "stop after N events (0: only the timeout stops)");
  sw->add_option("--timeout", watch.timeout_s, "stop watching after S seconds (default 30)")
      ->check(CLI::Range(0.001, 86400.0));

  auto* sm = app.add_subcommand("members", "list members: id (hex), name, peer/client URLs");
  auto* ss = app.add_subcommand(
      "status", "one line per --server endpoint: member id, leader, term, index, revision, db");

  auto* sc = app.add_subcommand(
      "stats", "stats --cache NAME: the cache's hit rate, entries, revision and lag");

  BenchArgs bench;
  auto* sb = app.add_subcommand(
      "bench", "closed-loop load: bench put|get; prints ops/s and latency percentiles (us)");
  sb->add_option("op", bench.op, "put or get")->required()->check(CLI::IsMember({"put", "get"}));
  sb->add_option("--clients", bench.clients, "client threads (default 16)");
  sb->add_option("--ops", bench.ops, "total operations (default 10000)");
  sb->add_option("--value-size", bench.value_size, "value bytes (default 100)");
  sb->add_option("--key-size", bench.key_size, "key bytes, exact (default 16)");
  sb->add_option("--keys", bench.keys, "distinct keys (default 1000)");
  sb->add_flag("--serializable", bench.serializable, "get: serializable reads");
  sb->add_option("--channels", bench.channels,
                 "gRPC connections per endpoint shared by the clients (default min(clients,8))");
  sb->add_option("--max-seconds", bench.max_seconds, "stop the run after S seconds (default 300)")
      ->check(CLI::Range(0.1, 86400.0));
  sb->add_option("--key-prefix", bench.key_prefix, "key prefix (default b)");

  for (auto* sub : app.get_subcommands({})) {
    sub->fallthrough();
    sub->footer(kFooter);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    if (g.json) {
      emit(Json{{"ok", false}, {"exit_code", core::kExitInvalid}, {"error", e.what()}});
    }
    std::fprintf(stderr,
                 "ERROR: invalid input or unavailable IPC resource: %s\nRun with --help for "
                 "more information.\n",
                 e.what());
    return core::kExitInvalid;
  }

  if (servers.empty()) servers.push_back("127.0.0.1:9001");
  auto eps = kc::parse_endpoints(servers);
  if (!eps) return fail(g, eps.status().message());
  g.servers = eps.value();

  if (sp->parsed()) return run_put(g, put);
  if (sg->parsed()) return run_get(g, get);
  if (sd->parsed()) return run_del(g, del);
  if (st->parsed()) return run_txn(g, txn);
  if (sw->parsed()) return run_watch(g, watch);
  if (sm->parsed()) return run_members(g);
  if (ss->parsed()) return run_status(g);
  if (sc->parsed()) return run_cache_stats(g);
  if (sb->parsed()) return run_bench(g, bench);
  return fail(g, "no command given");
}
