#include "ringwire/ipc/channel.hpp"

#include <algorithm>
#include <cstring>

#include "huge_pages.hpp"
#include "peer_state.hpp"
#include "producer_loan.hpp"
#include "ringwire/queue/blocking.hpp"
#include "wait_loop.hpp"

namespace ringwire::ipc {

using core::Errc;
using core::Result;
using core::Status;
using shm::PeerRole;
using shm::SegmentKind;
using shm::SegmentSpec;
using shm::ShmSegment;

const char* wait_strategy_name(WaitStrategy w) noexcept {
  switch (w) {
    case WaitStrategy::spin:
      return "spin";
    case WaitStrategy::spin_yield:
      return "yield";
    case WaitStrategy::spin_futex:
      return "futex";
  }
  return "unknown";
}
const char* full_policy_name(FullPolicy p) noexcept {
  switch (p) {
    case FullPolicy::block:
      return "block";
    case FullPolicy::fail:
      return "fail";
    case FullPolicy::drop:
      return "drop";
  }
  return "unknown";
}
bool parse_wait_strategy(std::string_view s, WaitStrategy& out) noexcept {
  for (auto w : {WaitStrategy::spin, WaitStrategy::spin_yield, WaitStrategy::spin_futex}) {
    if (s == wait_strategy_name(w)) {
      out = w;
      return true;
    }
  }
  return false;
}
bool parse_full_policy(std::string_view s, FullPolicy& out) noexcept {
  for (auto p : {FullPolicy::block, FullPolicy::fail, FullPolicy::drop}) {
    if (s == full_policy_name(p)) {
      out = p;
      return true;
    }
  }
  return false;
}

namespace {

constexpr std::size_t kRingOffset = sizeof(ChannelControl);

PeerRole peer_role_of(ChannelRole r) {
  return r == ChannelRole::producer ? PeerRole::producer : PeerRole::consumer;
}
PeerRole other_role(ChannelRole r) {
  return r == ChannelRole::producer ? PeerRole::consumer : PeerRole::producer;
}

Status validate_options(const ChannelOptions& o, std::uint64_t& max_message) {
  max_message = o.max_message != 0 ? o.max_message : ByteRing::max_message_for(o.capacity);
  if (auto st = ByteRing::check_geometry(o.capacity, max_message); !st) return st;
  if (max_message > UINT32_MAX) return {Errc::invalid_argument, "max message above 4 GiB"};
  if (static_cast<std::uint32_t>(o.wait) > 2 || static_cast<std::uint32_t>(o.full) > 2) {
    return {Errc::invalid_argument, "unknown wait strategy or full policy"};
  }
  return {};
}

}  // namespace

Channel::Channel(ShmSegment seg, ByteRing ring, ChannelRole role, WaitStrategy wait,
                 FullPolicy full)
    : seg_(std::make_unique<ShmSegment>(std::move(seg))),
      ring_(std::move(ring)),
      role_(role),
      wait_(wait),
      full_(full) {}

Channel::Channel(Channel&&) noexcept = default;

Channel& Channel::operator=(Channel&& other) noexcept {
  if (this == &other) return *this;
  // The connection we drop is left like in ~Channel: the peer hears "closed".
  if (seg_) mark_left(seg_->header(), peer_role_of(role_));
  seg_ = std::move(other.seg_);
  ring_ = std::move(other.ring_);
  role_ = other.role_;
  wait_ = other.wait_;
  full_ = other.full_;
  spin_rounds_ = other.spin_rounds_;
  liveness_interval_ns_ = other.liveness_interval_ns_;
  name_check_interval_ns_ = other.name_check_interval_ns_;
  next_name_check_ns_ = other.next_name_check_ns_;
  return *this;
}

Channel::~Channel() {
  if (!seg_) return;
  // Tell the peer we left on purpose, so it reports "closed", not "dead".
  mark_left(seg_->header(), peer_role_of(role_));
}

Result<Channel> Channel::create(std::string_view name, ChannelRole role,
                                const ChannelOptions& options) {
  std::uint64_t max_message = 0;
  if (auto st = validate_options(options, max_message); !st) return st;
  SegmentSpec spec;
  spec.kind = SegmentKind::channel;
  spec.layout_hash = kChannelLayoutHash;
  spec.capacity = options.capacity;
  spec.element_size = static_cast<std::uint32_t>(max_message);
  spec.payload_size = kRingOffset + ByteRing::bytes_for(options.capacity);
  auto seg = ShmSegment::create(name, spec);
  if (!seg) return seg.status();
  auto* base = static_cast<std::byte*>(seg->payload());
  auto* ctl = new (base) ChannelControl();
  ctl->wait_strategy = static_cast<std::uint32_t>(options.wait);
  ctl->full_policy = static_cast<std::uint32_t>(options.full);
  ctl->ring_offset = kRingOffset;
  ctl->ring_bytes = ByteRing::bytes_for(options.capacity);
  // Huge pages: advise before the ring is first touched (create_in zeroes it), then record
  // only what the kernel really mapped that way.
  const bool advised = options.huge_pages && detail::advise_huge_pages(base, spec.payload_size);
  auto ring =
      ByteRing::create_in(base + kRingOffset, ctl->ring_bytes, options.capacity, max_message);
  if (!ring) return ring.status();
  if (advised && detail::huge_mapped_kb(base) > 0) ctl->huge_pages = 1;
  seg->register_peer(peer_role_of(role));
  seg->mark_ready();
  Channel ch(std::move(*seg), std::move(*ring), role, options.wait, options.full);
  ch.spin_rounds_ = options.spin_rounds;
  ch.liveness_interval_ns_ = options.liveness_interval_ns;
  ch.name_check_interval_ns_ = options.name_check_interval_ns;
  return ch;
}

Result<Channel> Channel::open(std::string_view name, ChannelRole role,
                              const ChannelOpenOptions& options) {
  SegmentSpec spec;
  spec.kind = SegmentKind::channel;
  spec.layout_hash = kChannelLayoutHash;
  shm::OpenOptions oo;
  oo.wait_ready_ns = options.wait_ready_ns;
  // element_size (the creator's max message) is left open (0) and checked against the ring.
  auto seg = ShmSegment::open(name, spec, oo);
  if (!seg) return seg.status();
  if (seg->payload_size() < sizeof(ChannelControl)) {
    return Status(Errc::geometry_mismatch, "channel payload too small");
  }
  auto* base = static_cast<std::byte*>(seg->payload());
  const auto* ctl = reinterpret_cast<const ChannelControl*>(base);
  // Everything below comes from shared memory: check before use.
  const std::uint64_t ring_offset = ctl->ring_offset, ring_bytes = ctl->ring_bytes;
  if (ring_offset != kRingOffset || ring_bytes > seg->payload_size() - kRingOffset ||
      ctl->wait_strategy > 2 || ctl->full_policy > 2) {
    return Status(Errc::corrupted, "channel control block is inconsistent");
  }
  auto ring = ByteRing::attach(base + ring_offset, ring_bytes);
  if (!ring) return ring.status();
  if (ring->capacity() != seg->header().capacity ||
      ring->max_message() != seg->header().element_size) {
    return Status(Errc::geometry_mismatch, "channel ring does not match the segment header");
  }
  // One live process per role.
  const auto current = seg->peer(peer_role_of(role));
  if (!current.empty() && current.is_alive() && !has_left(seg->header(), peer_role_of(role))) {
    return Status(Errc::already_exists,
                  std::string("channel '") + std::string(name) + "' already has a live " +
                      (role == ChannelRole::producer ? "producer" : "consumer") + " (pid " +
                      std::to_string(current.pid) + ")");
  }
  clear_left(seg->header(), peer_role_of(role));
  seg->register_peer(peer_role_of(role));
  Channel ch(std::move(*seg), std::move(*ring), role, static_cast<WaitStrategy>(ctl->wait_strategy),
             static_cast<FullPolicy>(ctl->full_policy));
  ch.spin_rounds_ = options.spin_rounds;
  ch.liveness_interval_ns_ = options.liveness_interval_ns;
  ch.name_check_interval_ns_ = options.name_check_interval_ns;
  return ch;
}

void Channel::heartbeat() noexcept {
  seg_->heartbeat(peer_role_of(role_));
}

Status Channel::check() {
  if (auto st = seg_->check_session(); !st) return st;
  const auto peer_role = other_role(role_);
  const char* who = role_ == ChannelRole::producer ? "consumer" : "producer";
  const auto peer = seg_->peer(peer_role);
  if (!peer.empty()) {
    if (has_left(seg_->header(), peer_role)) {
      return {Errc::closed, std::string("the ") + who + " closed the channel"};
    }
    if (!peer.is_alive()) {
      return {Errc::peer_dead,
              std::string("the ") + who + " (pid " + std::to_string(peer.pid) + ") died"};
    }
  }
  if (!seg_->is_owner()) {
    const std::uint64_t now = core::now_ns();
    if (now >= next_name_check_ns_) {
      next_name_check_ns_ = now + name_check_interval_ns_;
      if (auto st = seg_->session_still_named(); !st) return st;
    }
  }
  return {};
}

template <class Ready>
Status Channel::wait_for(Ready ready, bool producer_side, core::Deadline deadline) {
  auto& w = ring_.control().wait;
  const detail::WaitParams p{wait_, spin_rounds_, liveness_interval_ns_};
  return detail::wait_loop(
      p, producer_side ? w.producer_sleeping : w.consumer_sleeping,
      producer_side ? w.space_seq : w.data_seq, deadline, ready,
      [&] {
        heartbeat();
        return check();
      },
      producer_side ? "channel full" : "channel empty");
}

Result<std::span<std::byte>> Channel::loan(std::size_t n, core::Deadline deadline) {
  return detail::loan_with_policy(
      ring_, full_, n, "channel", [&] { publish(); },
      [&](auto ready) { return wait_for(ready, true, deadline); });
}

void Channel::publish() noexcept {
  if (!ring_.publish()) return;
  if (wait_ == WaitStrategy::spin_futex) {
    auto& w = ring_.control().wait;
    queue::detail::wake_if_sleeping(w.consumer_sleeping, w.data_seq, w.wakeups);
  }
}

Status Channel::send(std::span<const std::byte> data, std::uint16_t type, core::Deadline deadline) {
  return detail::send_copy(*this, data, type, deadline);
}

Result<RecordView> Channel::try_receive() {
  RecordView v;
  switch (ring_.read(v)) {
    case ReadStatus::ok:
      return v;
    case ReadStatus::empty:
      return Status(Errc::would_block, "channel empty");
    case ReadStatus::corrupted:
      break;
  }
  return Status(Errc::corrupted, "channel '" + seg_->name() + "': " + ring_.corruption());
}

Result<RecordView> Channel::receive(core::Deadline deadline) {
  for (;;) {
    auto r = try_receive();
    if (r || r.status().code() != Errc::would_block) return r;
    // readable() is true for a published padding record alone (the producer loaned past the
    // wrap and has not committed yet): read() skips it and finds nothing, so wait again.
    if (auto st = wait_for([&] { return ring_.readable(); }, false, deadline); !st) return st;
  }
}

void Channel::release() noexcept {
  if (!ring_.release()) return;
  if (wait_ == WaitStrategy::spin_futex) {
    auto& w = ring_.control().wait;
    queue::detail::wake_if_sleeping(w.producer_sleeping, w.space_seq, w.wakeups);
  }
}

ChannelStats Channel::stats() const noexcept {
  const auto& c = ring_.control();
  ChannelStats s;
  s.messages = c.messages.load(std::memory_order_relaxed);
  s.bytes = c.bytes.load(std::memory_order_relaxed);
  s.drops = c.drops.load(std::memory_order_relaxed);
  s.wakeups = c.wait.wakeups.load(std::memory_order_relaxed);
  s.used_bytes = ring_.used_bytes();
  s.capacity = ring_.capacity();
  return s;
}

}  // namespace ringwire::ipc
