#include "ipc_stats.hpp"

#include "readonly_mapping.hpp"
#include "ringwire/ipc/channel.hpp"
#include "ringwire/ipc/mailbox.hpp"
#include "ringwire/queue/spsc_ring.hpp"
#include "ringwire/shm/process_identity.hpp"

namespace ringwire::tools {

using nlohmann::json;

namespace {

bool is_kind(const shm::SegmentInfo& info, shm::SegmentKind k) {
  return info.kind == static_cast<std::uint32_t>(k);
}

json byte_ring_json(const ipc::ByteRingControl& c) {
  const std::uint64_t head = c.head.load(std::memory_order_acquire);
  const std::uint64_t tail = c.tail.load(std::memory_order_acquire);
  return {{"capacity", c.capacity},
          {"max_message", c.max_message},
          {"fill_bytes", tail >= head ? tail - head : 0},
          {"messages_passed", c.messages.load(std::memory_order_relaxed)},
          {"bytes_passed", c.bytes.load(std::memory_order_relaxed)},
          {"drops", c.drops.load(std::memory_order_relaxed)},
          {"futex_wakeups", c.wait.wakeups.load(std::memory_order_relaxed)}};
}

json channel_json(const ReadOnlyMapping& m) {
  const std::size_t payload = m.header().payload_offset;
  const auto* ctl = m.at<ipc::ChannelControl>(payload);
  if (ctl == nullptr) return {{"problem", "channel control block outside the segment"}};
  const auto* ring = m.at<ipc::ByteRingControl>(payload + ctl->ring_offset);
  if (ring == nullptr || ctl->ring_offset != sizeof(ipc::ChannelControl)) {
    return {{"problem", "channel ring outside the segment"}};
  }
  json j = byte_ring_json(*ring);
  j["wait_strategy"] =
      ctl->wait_strategy <= 2
          ? ipc::wait_strategy_name(static_cast<ipc::WaitStrategy>(ctl->wait_strategy))
          : "invalid";
  j["full_policy"] = ctl->full_policy <= 2
                         ? ipc::full_policy_name(static_cast<ipc::FullPolicy>(ctl->full_policy))
                         : "invalid";
  j["huge_pages"] = ctl->huge_pages == 1;
  return j;
}

json mailbox_json(const ReadOnlyMapping& m) {
  const std::size_t payload = m.header().payload_offset;
  const auto* ctl = m.at<ipc::MailboxControl>(payload);
  if (ctl == nullptr || ctl->lanes == 0 || ctl->lanes > ipc::kMaxMailboxLanes) {
    return {{"problem", "mailbox control block invalid"}};
  }
  const auto* wait = m.at<ipc::MailboxWait>(payload + sizeof(ipc::MailboxControl));
  json lanes = json::array();
  for (std::uint32_t i = 0; i < ctl->lanes; ++i) {
    const auto* slot = m.at<ipc::LaneSlot>(payload + ctl->slots_offset + i * sizeof(ipc::LaneSlot));
    const auto* ring =
        m.at<ipc::ByteRingControl>(payload + ctl->lanes_offset + i * ctl->lane_stride);
    if (slot == nullptr || ring == nullptr) break;
    json l = byte_ring_json(*ring);
    const std::uint64_t owner = slot->owner.load(std::memory_order_acquire);
    if (owner == 0 || owner > INT32_MAX) {
      l["owner"] = nullptr;
    } else {
      const shm::ProcessIdentity id{static_cast<std::int32_t>(owner),
                                    slot->start_time.load(std::memory_order_acquire)};
      l["owner"] = {
          {"pid", id.pid},
          {"alive", id.start_time == 0 ? shm::process_start_time(id.pid) != 0 : id.is_alive()},
          {"left", slot->left.load(std::memory_order_acquire) != 0}};
    }
    lanes.push_back(l);
  }
  json j{
      {"lanes", lanes}, {"lane_capacity", ctl->lane_capacity}, {"max_message", ctl->max_message}};
  if (wait != nullptr) {
    j["consumer_futex_wakeups"] = wait->wakeups.load(std::memory_order_relaxed);
    j["lanes_reclaimed"] = wait->lanes_reclaimed.load(std::memory_order_relaxed);
  }
  return j;
}

}  // namespace

json spsc_ring_stats(const std::string& name, const shm::SegmentInfo& info) {
  json rings = json::array();
  const bool pair = is_kind(info, shm::SegmentKind::spsc_ring_pair);
  if (!(pair || is_kind(info, shm::SegmentKind::spsc_ring)) || !info.header_valid ||
      info.element_size == 0) {
    return rings;
  }
  ReadOnlyMapping m(name);
  if (!m.ok()) return rings;
  const auto& h = m.header();
  const int count = pair ? 2 : 1;
  // Stride as laid out by spsc_queue: the payload split in two equal halves.
  const std::size_t stride = count == 1 ? 0 : h.payload_size / 2;
  for (int i = 0; i < count; ++i) {
    const auto* c =
        m.at<queue::SpscControl>(h.payload_offset + stride * static_cast<std::size_t>(i));
    if (c == nullptr) break;
    const std::uint64_t head = c->head.load(std::memory_order_acquire);
    const std::uint64_t tail = c->tail.load(std::memory_order_acquire);
    rings.push_back({{"capacity", c->capacity},
                     {"fill", tail >= head ? tail - head : 0},
                     {"messages_passed", head},
                     {"bytes_passed", head * c->element_size},
                     {"drops", c->wait.drops.load(std::memory_order_relaxed)},
                     {"futex_wakeups", c->wait.wakeups.load(std::memory_order_relaxed)}});
  }
  return rings;
}

json ipc_stats(const std::string& name, const shm::SegmentInfo& info) {
  const bool channel = is_kind(info, shm::SegmentKind::channel);
  const bool mailbox = is_kind(info, shm::SegmentKind::mailbox);
  if (!info.header_valid || !(channel || mailbox)) return nullptr;
  ReadOnlyMapping m(name);
  if (!m.ok()) return nullptr;
  return channel ? channel_json(m) : mailbox_json(m);
}

}  // namespace ringwire::tools
