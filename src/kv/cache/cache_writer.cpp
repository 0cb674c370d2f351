#include "ringwire/kv/cache/cache_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "ringwire/core/clock.hpp"
#include "ringwire/shm/process_identity.hpp"

namespace ringwire::kv::cache {

using core::Errc;
using core::Result;
using core::Status;

Result<CacheGeometry> geometry_for(const CacheOptions& o) {
  if (o.key_max == 0 || o.key_max > kMaxKeyBytes)
    return Status(Errc::invalid_argument,
                  "--key-max must be between 1 and " + std::to_string(kMaxKeyBytes));
  if (o.value_max > kMaxValueBytes)
    return Status(Errc::invalid_argument,
                  "--max-value must be at most " + std::to_string(kMaxValueBytes));
  if (o.max_probe == 0 || o.max_probe > kMaxProbe)
    return Status(Errc::invalid_argument, "probe window must be 1.." + std::to_string(kMaxProbe));
  std::uint64_t capacity = o.capacity;
  if (capacity == 0) return Status(Errc::invalid_argument, "--capacity must be at least 1");
  const std::uint64_t slot = slot_size_for(o.key_max, o.value_max);
  if (o.memory != 0) {
    // Twice as many slots as entries (load <= 1/2 keeps probe windows short).
    const std::uint64_t fit = o.memory / (2 * slot);
    if (fit == 0)
      return Status(Errc::invalid_argument,
                    "--memory " + std::to_string(o.memory) + " cannot hold one entry of " +
                        std::to_string(slot) + " bytes (twice, for the load factor)");
    if (fit < capacity) capacity = fit;
  }
  CacheGeometry g;
  g.capacity = capacity;
  g.slots = 2;
  while (g.slots < 2 * capacity && g.slots < kMaxSlots)
    g.slots <<= 1;
  if (g.slots / 2 < capacity) capacity = g.capacity = g.slots / 2;
  g.key_max = o.key_max;
  g.value_max = o.value_max;
  g.max_probe = static_cast<std::uint32_t>(std::min<std::uint64_t>(o.max_probe, g.slots));
  g.reader_slots = kReaderSlots;
  if (!compute_geometry(g)) return Status(Errc::invalid_argument, "cache geometry out of range");
  return g;
}

namespace {

bool same_geometry(const CacheGeometry& a, const CacheGeometry& b) {
  return a.slots == b.slots && a.capacity == b.capacity && a.key_max == b.key_max &&
         a.value_max == b.value_max && a.max_probe == b.max_probe &&
         a.reader_slots == b.reader_slots;
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}

}  // namespace

Result<std::unique_ptr<CacheWriter>> CacheWriter::open(const CacheOptions& o) {
  auto geometry = geometry_for(o);
  if (!geometry) return geometry.status();
  std::unique_ptr<CacheWriter> w(new CacheWriter());
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto spec = cache_spec();
    spec.payload_size = geometry->payload_size;
    spec.capacity = geometry->slots;
    spec.element_size = geometry->slot_size;
    auto created = shm::ShmSegment::create(o.name, spec);
    if (created) {
      w->seg_ = std::make_unique<shm::ShmSegment>(std::move(*created));
      if (!CacheTable::format(w->seg_->payload(), w->seg_->payload_size(), *geometry,
                              random_seed()) ||
          !w->table_.attach(w->seg_->payload(), w->seg_->payload_size())) {
        return Status(Errc::system_error, "cannot lay out the cache table");
      }
      if (pthread_mutex_lock(&w->table_.control().agent_lock) != 0)
        return Status(Errc::system_error, "cannot take the agent lock of a new segment");
      w->agent_locked_ = true;
      w->set_agent_state(AgentState::starting);
      w->seg_->mark_ready();
      return w;
    }
    if (created.status().code() != Errc::already_exists) return created.status();

    // Someone's segment is there. Take it over if its agent is gone.
    shm::OpenOptions oo;
    oo.allow_dead_creator = true;
    auto opened = shm::ShmSegment::open(o.name, cache_spec(), oo);
    if (!opened) {
      // Not ours to judge (unfinished, another kind, other build): replace it only if the
      // process that made it is gone.
      auto info = shm::inspect_segment(o.name);
      if (info && !info->creator_alive) {
        (void)shm::remove_segment(o.name);
        continue;
      }
      return Status(opened.status().code(), opened.status().message());
    }
    auto seg = std::make_unique<shm::ShmSegment>(std::move(*opened));
    CacheTable table;
    if (!table.attach(seg->payload(), seg->payload_size())) {
      if (seg->creator_alive())
        return Status(Errc::corrupted, "segment '" + o.name + "' holds an invalid cache table");
      seg.reset();
      (void)shm::remove_segment(o.name);
      continue;
    }
    const int rc = pthread_mutex_trylock(&table.control().agent_lock);
    if (rc == EBUSY) {
      return Status(Errc::already_exists, "cache '" + o.name +
                                              "' is already served by kv_cache pid " +
                                              std::to_string(table.state().agent_pid.load()));
    }
    if (rc == EOWNERDEAD) {
      pthread_mutex_consistent(&table.control().agent_lock);
    } else if (rc != 0) {
      return Status(Errc::system_error,
                    std::string("agent lock of '") + o.name + "': " + std::strerror(rc));
    }
    if (!same_geometry(table.geometry(), *geometry)) {
      // Different size asked for: start afresh; readers notice the new session and re-attach.
      pthread_mutex_unlock(&table.control().agent_lock);
      seg->take_ownership();
      seg.reset();  // unlinks
      continue;
    }
    seg->take_ownership();
    w->seg_ = std::move(seg);
    w->table_ = table;
    w->agent_locked_ = true;
    w->took_over_ = true;
    w->state().takeovers.fetch_add(1, std::memory_order_relaxed);
    // The writer lock may still be held by the dead agent: the guard repairs what it left.
    { Guard g(*w); }
    w->set_agent_state(AgentState::starting);
    return w;
  }
  return Status(Errc::system_error, "segment '" + o.name + "' keeps changing; giving up");
}

CacheWriter::~CacheWriter() {
  if (seg_ && agent_locked_) {
    set_agent_state(AgentState::stopped);
    pthread_mutex_unlock(&table_.control().agent_lock);
  }
}

void CacheWriter::lock_writer() {
  const int rc = pthread_mutex_lock(&table_.control().writer_lock);
  if (rc == EOWNERDEAD) {
    repaired_ += table_.repair();
    state().lock_recoveries.fetch_add(1, std::memory_order_relaxed);
    pthread_mutex_consistent(&table_.control().writer_lock);
  } else if (rc != 0) {
    // ENOTRECOVERABLE (a recovering owner died before marking it consistent) or EINVAL (the
    // control block was overwritten): writing without the lock would corrupt the table for
    // every reader. Stop here: readers go to RPC as no one confirms the table any more. (Not
    // reachable through our own code, which always marks a recovered lock consistent; a
    // segment in this state has to be removed, `ringwire-shm rm`, before a new agent starts.)
    std::fprintf(stderr, "kv_cache: cannot take the writer lock: %s\n", std::strerror(rc));
    std::abort();
  }
}

CacheWriter::Guard::Guard(CacheWriter& w) : w_(w) {
  w_.lock_writer();
}
CacheWriter::Guard::~Guard() {
  pthread_mutex_unlock(&w_.table_.control().writer_lock);
}

void CacheWriter::set_agent_state(AgentState s) noexcept {
  auto& st = state();
  if (s == AgentState::starting) {
    const auto self = shm::ProcessIdentity::self();
    st.agent_start_time.store(self.start_time, std::memory_order_relaxed);
    st.agent_pid.store(self.pid, std::memory_order_relaxed);
  }
  st.agent_state.store(static_cast<std::uint32_t>(s), std::memory_order_release);
}

void CacheWriter::confirm(std::int64_t revision, std::uint64_t contact_ns) noexcept {
  auto& st = state();
  if (revision > st.applied_revision.load(std::memory_order_relaxed))
    st.applied_revision.store(revision, std::memory_order_release);
  if (contact_ns > st.contact_ns.load(std::memory_order_relaxed))
    st.contact_ns.store(contact_ns, std::memory_order_release);
}

void CacheWriter::reap_readers() {
  auto& st = state();
  for (std::uint32_t i = 0; i < table_.geometry().reader_slots; ++i) {
    ReaderSlot& r = table_.reader_slot(i);
    const auto pid = r.pid.load(std::memory_order_acquire);
    if (pid <= 0) continue;
    if (shm::ProcessIdentity{pid, r.start_time.load(std::memory_order_relaxed)}.is_alive())
      continue;
    // A reader may be starting up in this slot right now (pid set, start time not yet):
    // give it until the next round.
    if (r.start_time.load(std::memory_order_relaxed) == 0) continue;
    st.retired_hits.fetch_add(r.hits.exchange(0), std::memory_order_relaxed);
    st.retired_misses.fetch_add(r.misses.exchange(0), std::memory_order_relaxed);
    st.retired_fallbacks.fetch_add(r.fallbacks.exchange(0), std::memory_order_relaxed);
    r.start_time.store(0, std::memory_order_relaxed);
    int expected = pid;
    r.pid.compare_exchange_strong(expected, 0, std::memory_order_release);
  }
}

}  // namespace ringwire::kv::cache
