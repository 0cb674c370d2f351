// `channel-spin`, `channel-yield`, `channel-futex`: ringwire::ipc::Channel
// with each WaitStrategy. Zero-copy on both sides: the producer fills the
// loaned span in place (loan / commit / publish), the consumer checks the
// record in place (receive / release). Latency: publish and release after
// every message. Throughput: publish every `tput_batch` commits and release
// every `tput_batch` records, and always release before waiting for more.
//
// Worker A creates the channels (it owns the names: its destructor unlinks
// them); worker B opens them once A has said so in the shared block.
#include <algorithm>
#include <cstdio>
#include <string>

#include "message.hpp"
#include "ringwire/ipc/channel.hpp"
#include "ringwire/shm/shm_segment.hpp"
#include "transport.hpp"
#include "workload.hpp"

namespace ipcb {
namespace {

using ringwire::core::Deadline;
using ringwire::core::Errc;
using ringwire::ipc::Channel;
using ringwire::ipc::ChannelOptions;
using ringwire::ipc::ChannelRole;
using ringwire::ipc::WaitStrategy;

class ChannelTx {
 public:
  ChannelTx(Channel& ch, std::size_t size, std::uint32_t batch, std::uint64_t deadline)
      : ch_(ch), size_(size), batch_(batch), deadline_(deadline) {}
  bool send(std::uint64_t seq) {
    auto span = ch_.loan(size_, Deadline::at(deadline_));
    if (!span) [[unlikely]] {
      err_ = span.status().to_string();
      return false;
    }
    fill_msg(span->data(), size_, seq);
    ch_.commit(size_);
    if (++pending_ >= batch_) {
      ch_.publish();
      pending_ = 0;
    }
    return true;
  }
  bool flush() {
    ch_.publish();
    pending_ = 0;
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  Channel& ch_;
  std::size_t size_;
  std::uint32_t batch_;
  std::uint64_t deadline_;
  std::uint32_t pending_ = 0;
  std::string err_;
};

class ChannelRx {
 public:
  ChannelRx(Channel& ch, std::size_t size, std::uint32_t batch, std::uint64_t deadline)
      : ch_(ch), size_(size), batch_(batch), deadline_(deadline) {}
  bool recv(std::uint64_t& seq, bool& intact) {
    auto r = ch_.try_receive();
    if (!r) {
      if (r.status().code() != Errc::would_block) {
        err_ = r.status().to_string();
        return false;
      }
      // Hand back what we hold before waiting, so the producer always has room.
      if (held_ != 0) {
        ch_.release();
        held_ = 0;
      }
      r = ch_.receive(Deadline::at(deadline_));
      if (!r) {
        err_ = r.status().to_string();
        return false;
      }
    }
    const auto data = r->data;
    if (data.size() == size_) {
      intact = check_msg(data.data(), size_, seq);
    } else {
      intact = false;
      seq = ~std::uint64_t{0};
    }
    if (++held_ >= batch_) {
      ch_.release();
      held_ = 0;
    }
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  Channel& ch_;
  std::size_t size_;
  std::uint32_t batch_;
  std::uint64_t deadline_;
  std::uint32_t held_ = 0;
  std::string err_;
};

class ChannelTransport final : public Transport {
 public:
  ChannelTransport(const char* name, WaitStrategy w) : name_(name), wait_(w) {}
  const char* name() const override { return name_; }
  Kind kind() const override { return Kind::ringwire; }
  std::string description() const override {
    const char* w = wait_ == WaitStrategy::spin         ? "spin"
                    : wait_ == WaitStrategy::spin_yield ? "spin_yield"
                                                        : "spin_futex";
    return std::string("ringwire::ipc::Channel, WaitStrategy::") + w +
           " (default spin_rounds 4096); loan/commit/publish + receive/release, zero-copy; "
           "throughput publishes and releases every --tput-batch messages (and releases "
           "before waiting)";
  }
  std::string prepare(const CellSpec& c) override {
    // The producer may hold tput_batch unpublished records while it waits
    // for room: the ring must have room for them and two more.
    const std::uint64_t rec = ringwire::ipc::record_bytes(c.size);
    if (c.workload == Workload::throughput &&
        c.channel_capacity < (std::uint64_t{c.tput_batch} + 2) * rec * 2) {
      return "channel capacity " + std::to_string(c.channel_capacity) + " is too small for " +
             std::to_string(c.tput_batch) + " unpublished " + std::to_string(c.size) +
             "-byte messages";
    }
    return {};
  }

  bool side_a(const CellSpec& c, SharedBlock& s) override {
    ringwire::shm::install_cleanup_handlers();
    ChannelOptions o;
    o.capacity = c.channel_capacity;
    o.wait = wait_;
    if (c.workload == Workload::latency) {
      auto req = Channel::create(base(c) + "req", ChannelRole::producer, o);
      if (!req) return fail(s.a_err, "create req", req.status().to_string());
      auto resp = Channel::create(base(c) + "resp", ChannelRole::consumer, o);
      if (!resp) return fail(s.a_err, "create resp", resp.status().to_string());
      s.created.store(1, std::memory_order_release);
      ChannelTx tx(*req, c.size, 1, c.deadline_ns);
      ChannelRx rx(*resp, c.size, 1, c.deadline_ns);
      const bool ok = latency_a(c, s, tx, rx);
      note_wakeups(s, req->stats().wakeups + resp->stats().wakeups);
      return ok;
    }
    auto data = Channel::create(base(c) + "data", ChannelRole::producer, o);
    if (!data) return fail(s.a_err, "create data", data.status().to_string());
    s.created.store(1, std::memory_order_release);
    ChannelTx tx(*data, c.size, c.tput_batch, c.deadline_ns);
    const bool ok = throughput_a(c, s, tx);
    note_wakeups(s, data->stats().wakeups);
    return ok;
  }

  bool side_b(const CellSpec& c, SharedBlock& s) override {
    Spin sp(s, c.deadline_ns);
    while (s.created.load(std::memory_order_acquire) == 0)
      if (sp.spin()) return fail(s.b_err, "wait", "the creator never announced the channels");
    if (c.workload == Workload::latency) {
      auto req = Channel::open(base(c) + "req", ChannelRole::consumer);
      if (!req) return fail(s.b_err, "open req", req.status().to_string());
      auto resp = Channel::open(base(c) + "resp", ChannelRole::producer);
      if (!resp) return fail(s.b_err, "open resp", resp.status().to_string());
      ChannelRx rx(*req, c.size, 1, c.deadline_ns);
      ChannelTx tx(*resp, c.size, 1, c.deadline_ns);
      return latency_b(c, s, tx, rx);
    }
    auto data = Channel::open(base(c) + "data", ChannelRole::consumer);
    if (!data) return fail(s.b_err, "open data", data.status().to_string());
    ChannelRx rx(*data, c.size, c.tput_batch, c.deadline_ns);
    return throughput_b(c, s, rx);
  }

 private:
  static std::string base(const CellSpec& c) { return "ipcb." + c.tag + "."; }
  // FUTEX_WAKE calls either side issued on the cell's rings (spin_futex only).
  static void note_wakeups(SharedBlock& s, std::uint64_t n) {
    std::snprintf(s.note, sizeof s.note, "futex wakeups %llu", static_cast<unsigned long long>(n));
  }
  static bool fail(ErrText& e, const char* what, const std::string& why) {
    e.set(std::string(what) + ": " + why);
    return false;
  }
  const char* name_;
  WaitStrategy wait_;
};

}  // namespace

TransportPtr make_channel_spin() {
  return std::make_unique<ChannelTransport>("channel-spin", WaitStrategy::spin);
}
TransportPtr make_channel_yield() {
  return std::make_unique<ChannelTransport>("channel-yield", WaitStrategy::spin_yield);
}
TransportPtr make_channel_futex() {
  return std::make_unique<ChannelTransport>("channel-futex", WaitStrategy::spin_futex);
}

}  // namespace ipcb
