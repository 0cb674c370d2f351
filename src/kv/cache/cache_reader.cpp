#include "ringwire/kv/cache/cache_reader.hpp"

#include <unistd.h>

#include "ringwire/core/clock.hpp"
#include "ringwire/kv/cache/cache_writer.hpp"
#include "ringwire/shm/process_identity.hpp"

namespace ringwire::kv::cache {

using core::Errc;
using core::Result;
using core::Status;

const char* outcome_name(ReadOutcome o) noexcept {
  switch (o) {
    case ReadOutcome::hit:
      return "hit";
    case ReadOutcome::miss:
      return "miss";
    case ReadOutcome::too_big:
      return "too_big";
    case ReadOutcome::stale:
      return "stale";
    case ReadOutcome::busy:
      return "busy";
    case ReadOutcome::unavailable:
      return "unavailable";
  }
  return "unknown";
}

std::string fill_mailbox_name(std::string_view name) {
  return std::string(name) + ".fill";
}

CacheReader::CacheReader(std::string name, ReaderOptions o) : name_(std::move(name)), opts_(o) {
  try_attach();
}

CacheReader::~CacheReader() {
  detach();
}

bool CacheReader::try_attach() {
  shm::OpenOptions oo;
  oo.wait_ready_ns = 0;
  // A dead agent's segment still holds valid entries, but nobody confirms them: attach
  // anyway (reads report stale), so a new agent that takes it over is picked up at once.
  oo.allow_dead_creator = true;
  auto seg = shm::ShmSegment::open(name_, cache_spec(), oo);
  if (!seg) {
    attach_error_ = seg.status().message();
    return false;
  }
  auto owned = std::make_unique<shm::ShmSegment>(std::move(*seg));
  CacheTable t;
  if (!t.attach(owned->payload(), owned->payload_size())) {
    attach_error_ = "segment '" + name_ + "' holds an invalid cache table";
    return false;
  }
  seg_ = std::move(owned);
  table_ = t;
  session_ = seg_->session_id();
  attach_error_.clear();
  // Claim a counter slot: pid first (CAS makes it ours), then the start time that lets the
  // agent tell a live owner from a dead one.
  const auto self = shm::ProcessIdentity::self();
  slot_ = nullptr;
  for (std::uint32_t i = 0; i < table_.geometry().reader_slots && slot_ == nullptr; ++i) {
    ReaderSlot& r = table_.reader_slot(i);
    std::int32_t expected = 0;
    if (r.pid.compare_exchange_strong(expected, self.pid, std::memory_order_acq_rel)) {
      r.start_time.store(self.start_time, std::memory_order_release);
      slot_ = &r;
    }
  }
  return true;
}

void CacheReader::detach() {
  if (seg_ && slot_ != nullptr && seg_->session_id() == session_) {
    auto& st = table_.state();
    st.retired_hits.fetch_add(slot_->hits.exchange(0), std::memory_order_relaxed);
    st.retired_misses.fetch_add(slot_->misses.exchange(0), std::memory_order_relaxed);
    st.retired_fallbacks.fetch_add(slot_->fallbacks.exchange(0), std::memory_order_relaxed);
    slot_->start_time.store(0, std::memory_order_relaxed);
    slot_->pid.store(0, std::memory_order_release);
  }
  slot_ = nullptr;
  fill_.reset();
  table_ = CacheTable();
  seg_.reset();
}

bool CacheReader::ensure_attached(std::uint64_t now) {
  if (seg_) {
    // Our own mapping says whether the owner closed it; the name check (rate-limited: it
    // is a syscall) whether it was replaced by a new segment.
    const auto& h = seg_->header();
    bool gone =
        h.session_id != session_ || h.state.load(std::memory_order_acquire) !=
                                        static_cast<std::uint32_t>(shm::SegmentState::ready);
    if (!gone && now >= next_name_check_ns_) {
      next_name_check_ns_ = now + static_cast<std::uint64_t>(opts_.reattach_interval.count());
      gone = !seg_->session_still_named();
    }
    if (!gone) return true;
    detach();
  }
  if (now < next_attach_ns_) return false;
  next_attach_ns_ = now + static_cast<std::uint64_t>(opts_.reattach_interval.count());
  return try_attach();
}

void CacheReader::count(ReadOutcome o) noexcept {
  const bool hit = o == ReadOutcome::hit;
  const bool miss = o == ReadOutcome::miss || o == ReadOutcome::too_big;
  if (slot_ != nullptr) {
    // Our own slot: a plain load + store is enough and costs no locked instruction.
    auto& c = hit ? slot_->hits : miss ? slot_->misses : slot_->fallbacks;
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    ++(hit ? local_hits_ : miss ? local_misses_ : local_fallbacks_);
  }
}

void CacheReader::request_fill(std::string_view key) {
  if (!opts_.request_fills) return;
  const std::uint64_t now = core::now_ns();
  // A send to the mailbox of an agent that died succeeds and is never read: after a takeover
  // the new agent serves a new mailbox under the same name. A miss already costs an RPC, so
  // checking the consumer (a kill(pid, 0), and the name every 100 ms) on each request is cheap.
  if (fill_ && !fill_->check()) fill_.reset();
  if (!fill_) {
    if (now < next_fill_open_ns_) return;
    next_fill_open_ns_ = now + static_cast<std::uint64_t>(opts_.reattach_interval.count());
    ipc::MailboxProducerOptions po;
    po.wait_ready_ns = 0;
    auto p = ipc::MailboxProducer::open(fill_mailbox_name(name_), po);
    if (!p) return;
    fill_.emplace(std::move(*p));
  }
  // Never wait: a full mailbox means the agent is busy filling, and a dropped request only
  // costs a later miss.
  auto st = fill_->send(std::as_bytes(std::span(key.data(), key.size())), 0, core::Deadline::at(0));
  if (!st && st.code() != Errc::would_block && st.code() != Errc::timed_out) fill_.reset();
}

ReadOutcome CacheReader::get(std::string_view key, CachedEntry& out,
                             std::chrono::nanoseconds max_staleness, ReadInfo* info) {
  // An upper bound of the monotonic time (core::TscClock): an age is never underestimated,
  // and a hit costs no clock_gettime (a quarter of a hit on a VM).
  const std::uint64_t bound = static_cast<std::uint64_t>(max_staleness.count());
  const std::uint64_t now = clock_.now_upper();
  if (!ensure_attached(now)) {
    count(ReadOutcome::unavailable);
    return ReadOutcome::unavailable;
  }
  auto& st = table_.state();
  // acquire: pairs with the agent's release stores in CacheWriter::confirm, so every change
  // up to this revision is visible in the slots read below.
  const auto agent = static_cast<AgentState>(st.agent_state.load(std::memory_order_acquire));
  const std::uint64_t contact = st.contact_ns.load(std::memory_order_acquire);
  const std::int64_t revision = st.applied_revision.load(std::memory_order_acquire);
  const std::uint64_t age = now > contact ? now - contact : 0;
  if (info != nullptr) {
    info->cache_revision = revision;
    info->age_ns = age;
  }
  ReadOutcome o;
  if (agent == AgentState::stopped) {
    o = ReadOutcome::unavailable;
  } else if (agent != AgentState::serving || contact == 0 || age > bound) {
    o = ReadOutcome::stale;
  } else if (key.empty() || key.size() > table_.geometry().key_max) {
    o = ReadOutcome::too_big;
  } else {
    switch (table_.lookup(key, out)) {
      case Lookup::hit:
        o = ReadOutcome::hit;
        break;
      case Lookup::busy:
        o = ReadOutcome::busy;
        break;
      default:
        o = ReadOutcome::miss;
        request_fill(key);
        break;
    }
  }
  count(o);
  return o;
}

Result<CacheStats> CacheReader::stats() const {
  if (!seg_) return Status(Errc::not_found, attach_error_.empty() ? "not attached" : attach_error_);
  const auto& st = table_.state();
  const auto& g = table_.geometry();
  CacheStats s;
  s.name = name_;
  switch (static_cast<AgentState>(st.agent_state.load())) {
    case AgentState::starting:
      s.agent_state = "starting";
      break;
    case AgentState::serving:
      s.agent_state = "serving";
      break;
    case AgentState::disconnected:
      s.agent_state = "disconnected";
      break;
    case AgentState::stopped:
      s.agent_state = "stopped";
      break;
    default:
      s.agent_state = "invalid";
  }
  s.agent_pid = st.agent_pid.load();
  s.agent_alive = shm::ProcessIdentity{s.agent_pid, st.agent_start_time.load()}.is_alive();
  s.applied_revision = st.applied_revision.load();
  const std::uint64_t contact = st.contact_ns.load(), now = core::now_ns();
  s.age_ms = contact == 0 ? UINT64_MAX : (now > contact ? (now - contact) / 1'000'000 : 0);
  s.entries = st.entries.load();
  s.tombstones = st.tombstones.load();
  s.capacity = g.capacity;
  s.slots = g.slots;
  s.key_max = g.key_max;
  s.value_max = g.value_max;
  s.hits = st.retired_hits.load() + local_hits_;
  s.misses = st.retired_misses.load() + local_misses_;
  s.fallbacks = st.retired_fallbacks.load() + local_fallbacks_;
  for (std::uint32_t i = 0; i < g.reader_slots; ++i) {
    const ReaderSlot& r = table_.reader_slot(i);
    if (r.pid.load() <= 0) continue;
    ++s.readers;
    s.hits += r.hits.load();
    s.misses += r.misses.load();
    s.fallbacks += r.fallbacks.load();
  }
  s.events_applied = st.events_applied.load();
  s.fills = st.fills.load();
  s.fill_requests = st.fill_requests.load();
  s.evictions = st.evictions.load();
  s.clears = st.clears.load();
  s.lock_recoveries = st.lock_recoveries.load();
  s.takeovers = st.takeovers.load();
  s.reconnects = st.reconnects.load();
  s.generation = st.generation.load();
  const std::uint64_t total = s.hits + s.misses + s.fallbacks;
  s.hit_rate = total == 0 ? 0.0 : static_cast<double>(s.hits) / static_cast<double>(total);
  return s;
}

}  // namespace ringwire::kv::cache
