#include "ringwire/kv/cache/cache_agent.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "ringwire/core/clock.hpp"
#include "ringwire/ipc/mailbox.hpp"
#include "ringwire/kv/cache/cache_reader.hpp"
#include "ringwire/kv/client/client.hpp"

namespace ringwire::kv::cache {

using core::Errc;
using core::Result;
using core::Status;

namespace {

// The revision of the store comes with every reply's header; this key need not exist.
const std::string kProbeKey(1, '\0');

bool is_compacted(const Status& s) {
  return s.message().find("compacted") != std::string::npos;
}

Result<ipc::Mailbox> create_fill_mailbox(const std::string& cache_name, std::uint32_t lanes) {
  ipc::MailboxOptions mo;
  mo.lanes = lanes;
  mo.lane_capacity = std::uint64_t{1} << 14;
  mo.full = ipc::FullPolicy::drop;
  const std::string name = fill_mailbox_name(cache_name);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto mb = ipc::Mailbox::create(name, mo);
    if (mb || mb.status().code() != Errc::already_exists) return mb;
    // We hold the agent lock, so a mailbox left there belongs to a dead agent (or to
    // something that is not ours to remove).
    auto info = shm::inspect_segment(name);
    if (!info || info->creator_alive) break;
    (void)shm::remove_segment(name);
  }
  return Status(Errc::already_exists,
                "fill mailbox '" + name + "' exists and its creator is alive");
}

}  // namespace

struct CacheAgent::Impl {
  AgentOptions opts;
  std::unique_ptr<CacheWriter> writer;
  std::optional<ipc::Mailbox> fills;
  std::unique_ptr<client::Client> client;
  // Highest revision of an event applied to the table (changed under the writer lock).
  std::int64_t last_event_rev = 0;
  // Progress replies of the current watch.
  std::mutex progress_mu;
  std::condition_variable progress_cv;
  std::int64_t progress_rev = 0;
  bool confirmed = false;  // the current session confirmed the table at least once
  mutable std::mutex report_mu;
  AgentReport rep;

  Result<std::int64_t> cluster_revision() {
    client::GetOptions g;
    g.count_only = true;  // linearizable: the revision is one the cluster had after we asked
    auto r = client->get(kProbeKey, g);
    if (!r) return r.status();
    return r->header.revision;
  }

  void clear_table(const char* why) {
    CacheWriter::Guard g(*writer);
    writer->table().clear();
    writer->state().applied_revision.store(0, std::memory_order_release);
    last_event_rev = 0;
    std::lock_guard<std::mutex> lk(report_mu);
    ++rep.clears;
    spdlog::warn("cache cleared: {}", why);
  }

  bool apply(const client::Event& ev) {
    CacheWriter::Guard g(*writer);
    const std::int64_t rev = ev.kv.mod_revision;
    if (rev > last_event_rev) {
      // Events come in revision order: the first event at `rev` means every change below
      // it has been applied.
      auto& applied = writer->state().applied_revision;
      if (rev - 1 > applied.load(std::memory_order_relaxed))
        applied.store(rev - 1, std::memory_order_release);
      last_event_rev = rev;
    }
    if (ev.type == client::Event::Type::put) {
      writer->table().update_if_cached(ev.kv.key, ev.kv.value, ev.kv.mod_revision,
                                       ev.kv.create_revision, ev.kv.version);
    } else {
      writer->table().erase(ev.kv.key, rev);
    }
    writer->state().events_applied.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void on_progress(std::int64_t rev) {
    std::lock_guard<std::mutex> lk(progress_mu);
    if (rev > progress_rev) progress_rev = rev;
    progress_cv.notify_all();
  }

  // One fill request: cache the key's current value if the watch has not moved past it.
  void fill(std::string_view key) {
    const auto& g = writer->table().geometry();
    if (key.empty() || key.size() > g.key_max) return;
    writer->state().fill_requests.fetch_add(1, std::memory_order_relaxed);
    {
      CacheWriter::Guard guard(*writer);
      if (writer->table().contains(key)) return;
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto r = client->get(std::string(key));
      if (!r || r->kvs.empty()) return;  // absent keys are not cached; errors: a later miss
      const auto& kv = r->kvs.front();
      if (kv.value.size() > g.value_max) return;
      CacheWriter::Guard guard(*writer);
      if (last_event_rev > r->header.revision) continue;  // the watch is ahead: read again
      if (writer->table().upsert(kv.key, kv.value, kv.mod_revision, kv.create_revision,
                                 kv.version)) {
        writer->state().fills.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lk(report_mu);
        ++rep.fills;
      }
      return;
    }
  }

  // Serves fill requests until the deadline.
  void serve_fills(std::uint64_t until_ns) {
    std::unordered_set<std::string> seen;
    for (;;) {
      auto m = fills->receive(core::Deadline::at(until_ns));
      if (!m) {
        if (m.status().code() == Errc::timed_out) return;
        if (m.status().code() == Errc::corrupted) continue;  // that lane is skipped from now
        spdlog::warn("fill mailbox: {}", m.status().message());
        return;
      }
      std::string key(reinterpret_cast<const char*>(m->record.data.data()), m->record.data.size());
      fills->release();
      if (seen.insert(key).second) fill(key);
      if (core::now_ns() >= until_ns) return;
    }
  }

  Status session(const std::atomic<bool>& stop) {
    std::int64_t start = writer->state().applied_revision.load(std::memory_order_acquire);
    if (start <= 0) {
      // An empty table is complete at any revision: start from the cluster's current one.
      auto rev = cluster_revision();
      if (!rev) return rev.status();
      CacheWriter::Guard g(*writer);
      if (writer->state().entries.load() != 0) writer->table().clear();
      writer->state().applied_revision.store(*rev, std::memory_order_release);
      last_event_rev = *rev;
      start = *rev;
    } else {
      CacheWriter::Guard g(*writer);
      last_event_rev = start;
    }
    {
      std::lock_guard<std::mutex> lk(progress_mu);
      progress_rev = 0;
    }
    confirmed = false;
    client::WatchOptions wo;
    wo.prefix = true;
    wo.start_revision = start + 1;
    wo.on_progress = [this](std::int64_t rev) { on_progress(rev); };
    auto opened = client->watch("", wo, [this](const client::Event& ev) { return apply(ev); });
    if (!opened) {
      if (is_compacted(opened.status())) clear_table("resume revision was compacted");
      return opened.status();
    }
    std::unique_ptr<client::Watch> w = std::move(*opened);
    {
      std::lock_guard<std::mutex> lk(report_mu);
      if (rep.sessions++ > 0) writer->state().reconnects.fetch_add(1, std::memory_order_relaxed);
    }
    spdlog::info("watching from revision {} via {}", start + 1, client->current_endpoint());
    const std::uint64_t hb = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(opts.heartbeat).count());
    std::uint64_t last_confirm = core::now_ns();
    std::uint64_t next_reap = 0;
    Status why;
    while (!stop.load(std::memory_order_relaxed)) {
      if (w->wait_for(std::chrono::milliseconds(0))) {
        why = w->status();
        if (why.is_ok()) why = Status(Errc::closed, "watch ended");
        if (is_compacted(why)) clear_table("watch fell behind compaction");
        break;
      }
      const std::uint64_t t0 = core::now_ns();
      auto rev = cluster_revision();
      if (rev && w->request_progress()) {
        std::unique_lock<std::mutex> lk(progress_mu);
        const bool caught_up = progress_cv.wait_for(
            lk, opts.rpc_timeout, [&] { return progress_rev >= *rev || stop.load(); });
        if (caught_up && progress_rev >= *rev) {
          const std::int64_t p = progress_rev;
          lk.unlock();
          CacheWriter::Guard g(*writer);
          writer->confirm(p, t0);
          if (writer->state().agent_state.load() != static_cast<std::uint32_t>(AgentState::serving))
            writer->set_agent_state(AgentState::serving);
          last_confirm = core::now_ns();
          confirmed = true;
        }
      }
      const std::uint64_t now = core::now_ns();
      if (now - last_confirm >
          static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(opts.resync_after).count())) {
        why = rev ? Status(Errc::timed_out,
                           "the watch did not catch up with revision " + std::to_string(*rev))
                  : rev.status();
        break;
      }
      if (now >= next_reap) {
        writer->reap_readers();
        next_reap = now + 1'000'000'000ull;
      }
      serve_fills(t0 + hb > now ? t0 + hb : now);
    }
    w->stop();
    w->wait_for(opts.rpc_timeout);
    return why;
  }
};

CacheAgent::CacheAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CacheAgent::~CacheAgent() = default;

Result<std::unique_ptr<CacheAgent>> CacheAgent::create(const AgentOptions& o) {
  if (o.endpoints.empty()) return Status(Errc::invalid_argument, "no cluster endpoints");
  if (o.heartbeat.count() <= 0) return Status(Errc::invalid_argument, "heartbeat must be > 0");
  auto impl = std::make_unique<Impl>();
  impl->opts = o;
  client::Options co;
  co.endpoints = o.endpoints;
  co.timeout = o.rpc_timeout;
  auto c = client::Client::create(co);
  if (!c) return c.status();
  impl->client = std::move(*c);
  auto w = CacheWriter::open(o.cache);
  if (!w) return w.status();
  impl->writer = std::move(*w);
  auto mb = create_fill_mailbox(o.cache.name, o.fill_lanes);
  if (!mb) return mb.status();
  impl->fills.emplace(std::move(*mb));
  impl->rep.took_over = impl->writer->took_over();
  impl->rep.repaired_slots = impl->writer->repaired_slots();
  return std::unique_ptr<CacheAgent>(new CacheAgent(std::move(impl)));
}

Status CacheAgent::run(const std::atomic<bool>& stop) {
  auto& m = *impl_;
  std::chrono::milliseconds backoff{50};
  while (!stop.load()) {
    Status s = m.session(stop);
    if (stop.load()) break;
    m.writer->set_agent_state(AgentState::disconnected);
    {
      std::lock_guard<std::mutex> lk(m.report_mu);
      m.rep.last_error = s.message();
    }
    // A session that served resets the backoff: this is a new outage, not the same one.
    if (m.confirmed) backoff = std::chrono::milliseconds(50);
    spdlog::warn("cluster link lost: {}; retrying in {} ms", s.message(), backoff.count());
    // Keep serving fills? No: without a watch a fill could not be kept coherent.
    const auto until =
        core::now_ns() + static_cast<std::uint64_t>(std::chrono::nanoseconds(backoff).count());
    while (!stop.load() && core::now_ns() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  return Status::ok();
}

AgentReport CacheAgent::report() const {
  std::lock_guard<std::mutex> lk(impl_->report_mu);
  AgentReport r = impl_->rep;
  r.events = impl_->writer->state().events_applied.load();
  r.applied_revision = impl_->writer->state().applied_revision.load();
  return r;
}

CacheWriter& CacheAgent::writer() noexcept {
  return *impl_->writer;
}

}  // namespace ringwire::kv::cache
