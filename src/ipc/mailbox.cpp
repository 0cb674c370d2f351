#include "ringwire/ipc/mailbox.hpp"

#include <cstring>

#include "producer_loan.hpp"
#include "ringwire/queue/blocking.hpp"
#include "ringwire/shm/process_identity.hpp"
#include "wait_loop.hpp"

namespace ringwire::ipc {

using core::Errc;
using core::Result;
using core::Status;
using shm::SegmentKind;
using shm::SegmentSpec;
using shm::ShmSegment;

namespace {

constexpr std::size_t kWaitOffset = sizeof(MailboxControl);
constexpr std::size_t kSlotsOffset = kWaitOffset + sizeof(MailboxWait);

std::size_t lanes_offset(std::uint32_t lanes) {
  return kSlotsOffset + lanes * sizeof(LaneSlot);
}

// Is the owner recorded in a lane slot still running? A claim whose start
// time is not stored yet is judged by the PID alone (the claimant was killed
// between its two stores, or is about to store it).
bool owner_alive(const LaneSlot& s) {
  const std::uint64_t pid = s.owner.load(std::memory_order_acquire);
  if (pid == 0 || pid > INT32_MAX) return false;
  const std::uint64_t start = s.start_time.load(std::memory_order_acquire);
  const std::uint64_t now_start = shm::process_start_time(static_cast<pid_t>(pid));
  if (now_start == 0) return false;
  return start == 0 || start == now_start;
}

}  // namespace

// ---- consumer ------------------------------------------------------------------------------

Mailbox::Mailbox(Mailbox&&) noexcept = default;
Mailbox& Mailbox::operator=(Mailbox&&) noexcept = default;
Mailbox::~Mailbox() = default;

Result<Mailbox> Mailbox::create(std::string_view name, const MailboxOptions& o) {
  if (o.lanes == 0 || o.lanes > kMaxMailboxLanes) {
    return Status(Errc::invalid_argument,
                  "lanes must be between 1 and " + std::to_string(kMaxMailboxLanes));
  }
  const std::uint64_t max_message =
      o.max_message != 0 ? o.max_message : ByteRing::max_message_for(o.lane_capacity);
  if (auto st = ByteRing::check_geometry(o.lane_capacity, max_message); !st) return st;
  if (max_message > UINT32_MAX) return Status(Errc::invalid_argument, "max message above 4 GiB");
  if (static_cast<std::uint32_t>(o.wait) > 2 || static_cast<std::uint32_t>(o.full) > 2) {
    return Status(Errc::invalid_argument, "unknown wait strategy or full policy");
  }
  const std::size_t stride = ByteRing::bytes_for(o.lane_capacity);
  SegmentSpec spec;
  spec.kind = SegmentKind::mailbox;
  spec.layout_hash = kMailboxLayoutHash;
  spec.capacity = o.lane_capacity;
  spec.element_size = static_cast<std::uint32_t>(max_message);
  spec.payload_size = lanes_offset(o.lanes) + o.lanes * stride;
  auto seg = ShmSegment::create(name, spec);
  if (!seg) return seg.status();
  auto* base = static_cast<std::byte*>(seg->payload());
  auto* ctl = new (base) MailboxControl();
  ctl->lanes = o.lanes;
  ctl->wait_strategy = static_cast<std::uint32_t>(o.wait);
  ctl->full_policy = static_cast<std::uint32_t>(o.full);
  ctl->lane_capacity = o.lane_capacity;
  ctl->max_message = max_message;
  ctl->lane_stride = stride;
  ctl->lanes_offset = lanes_offset(o.lanes);
  ctl->slots_offset = kSlotsOffset;
  Mailbox mb;
  mb.wait_words_ = new (base + kWaitOffset) MailboxWait();
  mb.slots_ = reinterpret_cast<LaneSlot*>(base + kSlotsOffset);
  for (std::uint32_t i = 0; i < o.lanes; ++i) {
    new (&mb.slots_[i]) LaneSlot();
    auto ring = ByteRing::create_in(base + ctl->lanes_offset + i * stride, stride, o.lane_capacity,
                                    max_message);
    if (!ring) return ring.status();
    mb.rings_.push_back(std::move(*ring));
  }
  mb.dirty_.assign(o.lanes, 0);
  mb.quarantined_.assign(o.lanes, 0);
  mb.max_message_ = max_message;
  mb.wait_ = o.wait;
  mb.spin_rounds_ = o.spin_rounds;
  mb.liveness_interval_ns_ = o.liveness_interval_ns;
  seg->register_peer(shm::PeerRole::consumer);
  seg->mark_ready();
  mb.seg_ = std::make_unique<ShmSegment>(std::move(*seg));
  return mb;
}

Result<MailboxMessage> Mailbox::try_receive() {
  const auto n = static_cast<std::uint32_t>(rings_.size());
  // Stay on one lane for a burst (its lines are hot), then move on so a
  // busy producer cannot starve the others.
  constexpr std::uint32_t kBurst = 64;
  for (std::uint32_t k = 0; k <= n; ++k) {
    const std::uint32_t i = next_lane_;
    if (quarantined_[i] == 0) {
      RecordView v;
      switch (rings_[i].read(v)) {
        case ReadStatus::ok:
          dirty_[i] = 1;
          if (++burst_ >= kBurst) {
            burst_ = 0;
            next_lane_ = (i + 1) % n;
          }
          return MailboxMessage{i, v};
        case ReadStatus::corrupted:
          quarantined_[i] = 1;
          return Status(Errc::corrupted,
                        "mailbox lane " + std::to_string(i) +
                            " is corrupt and no longer read: " + rings_[i].corruption());
        case ReadStatus::empty:
          break;
      }
    }
    burst_ = 0;
    next_lane_ = (i + 1) % n;
  }
  return Status(Errc::would_block, "mailbox empty");
}

bool Mailbox::any_readable() noexcept {
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    if (quarantined_[i] == 0 && rings_[i].readable()) return true;
  }
  return false;
}

Result<MailboxMessage> Mailbox::receive(core::Deadline deadline) {
  const detail::WaitParams p{wait_, spin_rounds_, liveness_interval_ns_};
  for (;;) {
    auto r = try_receive();
    if (r || r.status().code() != Errc::would_block) return r;
    // As in Channel::receive: a lane whose only new record is padding is "readable" but
    // yields nothing, so wait again until the deadline.
    auto st = detail::wait_loop(
        p, wait_words_->consumer_sleeping, wait_words_->data_seq, deadline,
        [&] { return any_readable(); },
        [&] {
          seg_->heartbeat(shm::PeerRole::consumer);
          reclaim_lanes();
          return seg_->check_session();
        },
        "mailbox empty");
    if (!st) return st;
  }
}

void Mailbox::release() noexcept {
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    if (dirty_[i] == 0) continue;
    dirty_[i] = 0;
    if (rings_[i].release() && wait_ == WaitStrategy::spin_futex) {
      auto& w = rings_[i].control().wait;
      queue::detail::wake_if_sleeping(w.producer_sleeping, w.space_seq, w.wakeups);
    }
  }
}

std::uint32_t Mailbox::reclaim_lanes() {
  std::uint32_t freed = 0;
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    LaneSlot& s = slots_[i];
    const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
    if (owner == 0) continue;
    const bool left = s.left.load(std::memory_order_acquire) != 0;
    if (!left && owner_alive(s)) continue;
    // Gone: free the lane once every message it published was delivered
    // and released (a corrupt lane is never handed out again).
    if (quarantined_[i] != 0 || dirty_[i] != 0 || rings_[i].readable()) continue;
    s.left.store(0, std::memory_order_relaxed);
    s.heartbeat_ns.store(0, std::memory_order_relaxed);
    s.start_time.store(0, std::memory_order_relaxed);
    // release: the resets above are visible to the next claimant's CAS.
    std::uint64_t expected = owner;
    if (s.owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
      ++freed;
      wait_words_->lanes_reclaimed.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return freed;
}

std::vector<LaneStats> Mailbox::lane_stats() const {
  std::vector<LaneStats> out(rings_.size());
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    const auto& c = rings_[i].control();
    auto& o = out[i];
    o.owner_pid = static_cast<std::int32_t>(slots_[i].owner.load(std::memory_order_acquire));
    o.owner_alive = owner_alive(slots_[i]);
    o.owner_left = slots_[i].left.load(std::memory_order_acquire) != 0;
    o.quarantined = quarantined_[i] != 0;
    o.messages = c.messages.load(std::memory_order_relaxed);
    o.bytes = c.bytes.load(std::memory_order_relaxed);
    o.drops = c.drops.load(std::memory_order_relaxed);
    o.used_bytes = rings_[i].used_bytes();
    o.wakeups = c.wait.wakeups.load(std::memory_order_relaxed);
  }
  return out;
}

std::uint64_t Mailbox::wakeups() const noexcept {
  return wait_words_->wakeups.load(std::memory_order_relaxed);
}

// ---- producer ------------------------------------------------------------------------------

MailboxProducer::MailboxProducer(ShmSegment seg, ByteRing ring) noexcept
    : seg_(std::make_unique<ShmSegment>(std::move(seg))), ring_(std::move(ring)) {}
MailboxProducer::MailboxProducer(MailboxProducer&&) noexcept = default;

MailboxProducer& MailboxProducer::operator=(MailboxProducer&& other) noexcept {
  if (this == &other) return *this;
  // The lane we drop is given up like in the destructor.
  if (seg_ && slot_ != nullptr) slot_->left.store(1, std::memory_order_release);
  seg_ = std::move(other.seg_);
  ring_ = std::move(other.ring_);
  wait_words_ = other.wait_words_;
  slot_ = other.slot_;
  lane_ = other.lane_;
  wait_ = other.wait_;
  full_ = other.full_;
  spin_rounds_ = other.spin_rounds_;
  liveness_interval_ns_ = other.liveness_interval_ns_;
  name_check_interval_ns_ = other.name_check_interval_ns_;
  next_name_check_ns_ = other.next_name_check_ns_;
  return *this;
}

MailboxProducer::~MailboxProducer() {
  // release: everything we published is visible to a consumer that sees it.
  // (A moved-from handle has no segment and says nothing.)
  if (seg_ && slot_ != nullptr) slot_->left.store(1, std::memory_order_release);
}

Result<MailboxProducer> MailboxProducer::open(std::string_view name,
                                              const MailboxProducerOptions& options) {
  SegmentSpec spec;  // element_size 0: the lanes' max message is checked against the header
  spec.kind = SegmentKind::mailbox;
  spec.layout_hash = kMailboxLayoutHash;
  shm::OpenOptions oo;
  oo.wait_ready_ns = options.wait_ready_ns;
  auto seg = ShmSegment::open(name, spec, oo);
  if (!seg) return seg.status();
  auto* base = static_cast<std::byte*>(seg->payload());
  const std::size_t size = seg->payload_size();
  if (size < kSlotsOffset) return Status(Errc::geometry_mismatch, "mailbox payload too small");
  const auto* ctl = reinterpret_cast<const MailboxControl*>(base);
  // Untrusted: every offset and count is checked against the mapping.
  const std::uint32_t lanes = ctl->lanes;
  const std::uint64_t stride = ctl->lane_stride;
  if (lanes == 0 || lanes > kMaxMailboxLanes || ctl->slots_offset != kSlotsOffset ||
      ctl->lanes_offset != lanes_offset(lanes) ||
      stride != ByteRing::bytes_for(ctl->lane_capacity) || ctl->lane_capacity > (1ull << 32) ||
      ctl->lanes_offset + lanes * stride > size || ctl->wait_strategy > 2 || ctl->full_policy > 2) {
    return Status(Errc::corrupted, "mailbox control block is inconsistent");
  }
  auto* slots = reinterpret_cast<LaneSlot*>(base + kSlotsOffset);
  const auto self = shm::ProcessIdentity::self();
  for (std::uint32_t i = 0; i < lanes; ++i) {
    std::uint64_t expected = 0;
    // The claim carries our PID, so the consumer can judge it at once.
    if (!slots[i].owner.compare_exchange_strong(expected, static_cast<std::uint64_t>(self.pid),
                                                std::memory_order_acq_rel)) {
      continue;
    }
    slots[i].start_time.store(self.start_time, std::memory_order_release);
    slots[i].heartbeat_ns.store(core::now_ns(), std::memory_order_relaxed);
    auto ring = ByteRing::attach(base + ctl->lanes_offset + i * stride, stride);
    if (!ring || ring->max_message() != seg->header().element_size) {
      slots[i].owner.store(0, std::memory_order_release);
      return ring ? Status(Errc::geometry_mismatch, "mailbox lane does not match the header")
                  : ring.status();
    }
    MailboxProducer p(std::move(*seg), std::move(*ring));
    p.wait_words_ = reinterpret_cast<MailboxWait*>(base + kWaitOffset);
    p.slot_ = &slots[i];
    p.lane_ = i;
    p.wait_ = static_cast<WaitStrategy>(ctl->wait_strategy);
    p.full_ = static_cast<FullPolicy>(ctl->full_policy);
    p.spin_rounds_ = options.spin_rounds;
    p.liveness_interval_ns_ = options.liveness_interval_ns;
    p.name_check_interval_ns_ = options.name_check_interval_ns;
    return p;
  }
  return Status(Errc::would_block, "all " + std::to_string(lanes) + " lanes of mailbox '" +
                                       std::string(name) + "' are taken");
}

Status MailboxProducer::check() {
  if (auto st = seg_->check_session(); !st) return st;
  if (!seg_->creator_alive()) {
    return {Errc::peer_dead,
            "the mailbox's consumer (pid " + std::to_string(seg_->header().creator_pid) + ") died"};
  }
  const std::uint64_t now = core::now_ns();
  if (now >= next_name_check_ns_) {
    next_name_check_ns_ = now + name_check_interval_ns_;
    if (auto st = seg_->session_still_named(); !st) return st;
  }
  return {};
}

Result<std::span<std::byte>> MailboxProducer::loan(std::size_t n, core::Deadline deadline) {
  auto& w = ring_.control().wait;
  const detail::WaitParams p{wait_, spin_rounds_, liveness_interval_ns_};
  return detail::loan_with_policy(
      ring_, full_, n, "mailbox lane", [&] { publish(); },
      [&](auto ready) {
        return detail::wait_loop(
            p, w.producer_sleeping, w.space_seq, deadline, ready,
            [&] {
              slot_->heartbeat_ns.store(core::now_ns(), std::memory_order_relaxed);
              return check();
            },
            "mailbox lane full");
      });
}

void MailboxProducer::publish() noexcept {
  if (!ring_.publish()) return;
  if (wait_ == WaitStrategy::spin_futex) {
    queue::detail::wake_if_sleeping(wait_words_->consumer_sleeping, wait_words_->data_seq,
                                    wait_words_->wakeups);
  }
}

Status MailboxProducer::send(std::span<const std::byte> data, std::uint16_t type,
                             core::Deadline deadline) {
  return detail::send_copy(*this, data, type, deadline);
}

}  // namespace ringwire::ipc
