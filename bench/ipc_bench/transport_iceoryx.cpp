// `iceoryx`: Eclipse iceoryx 2.x (Debian libiceoryx-posh-dev) untyped
// publish / subscribe, zero-copy: the publisher fills a loaned chunk
// (loan / publish), the subscriber checks it in place (take / release).
// Lossless settings: ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER and
// QueueFullPolicy::BLOCK_PRODUCER, subscriber queue 256 (the maximum), no
// history. The subscriber busy-polls take() with `pause` (no WaitSet): the
// lowest-latency way to use it, like channel-spin. Needs the iox-roudi
// daemon (bench/run_ipc_bench.sh starts and stops it); each worker registers
// its own runtime and leaves through exit() so it deregisters cleanly.
#include "transport.hpp"

#if IPCB_HAVE_ICEORYX
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/mepoo/chunk_header.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "message.hpp"
#include "workload.hpp"
#endif

namespace ipcb {

#if IPCB_HAVE_ICEORYX
namespace {

// RouDi listens on the datagram socket /tmp/roudi (IOX_UDS_SOCKET_PATH_PREFIX
// + IPC_CHANNEL_ROUDI_NAME); connect() succeeds only while it is bound.
bool roudi_running() {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s%s",
                iox::platform::IOX_UDS_SOCKET_PATH_PREFIX, iox::roudi::IPC_CHANNEL_ROUDI_NAME);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Through a buffer of the string's full capacity: constructing from a short
// std::string's c_str() trips GCC 12's -Warray-bounds inside iceoryx's
// strnlen + memcpy (a false positive, but -Werror).
template <class IoxString>
IoxString iox_string(const std::string& s) {
  char buf[IoxString::capacity() + 1] = {};
  std::memcpy(buf, s.data(), std::min<std::size_t>(s.size(), sizeof buf - 1));
  return IoxString(iox::cxx::TruncateToCapacity, buf);
}
iox::capro::IdString_t id(const std::string& s) {
  return iox_string<iox::capro::IdString_t>(s);
}

class IoxTx {
 public:
  IoxTx(iox::popo::UntypedPublisher& pub, std::size_t size, SharedBlock& s, std::uint64_t deadline)
      : pub_(pub), size_(size), sp_(s, deadline) {}
  bool send(std::uint64_t seq) {
    for (;;) {
      auto r = pub_.loan(static_cast<std::uint32_t>(size_), 8);
      if (!r.has_error()) {
        void* p = r.value();
        fill_msg(p, size_, seq);
        pub_.publish(p);
        return true;
      }
      const auto e = r.get_error();
      if (e != iox::popo::AllocationError::RUNNING_OUT_OF_CHUNKS || sp_.spin()) {
        err_ = std::string("loan: ") + iox::popo::asStringLiteral(e);
        return false;
      }
    }
  }
  bool flush() { return true; }
  const std::string& error() const { return err_; }

 private:
  iox::popo::UntypedPublisher& pub_;
  std::size_t size_;
  Spin sp_;
  std::string err_;
};

class IoxRx {
 public:
  IoxRx(iox::popo::UntypedSubscriber& sub, std::size_t size, SharedBlock& s, std::uint64_t deadline)
      : sub_(sub), size_(size), sp_(s, deadline) {}
  bool recv(std::uint64_t& seq, bool& intact) {
    for (;;) {
      auto r = sub_.take();
      if (!r.has_error()) {
        const void* p = r.value();
        const auto n = iox::mepoo::ChunkHeader::fromUserPayload(p)->userPayloadSize();
        intact = n == size_ && check_msg(p, size_, seq);
        if (n < 8) seq = ~std::uint64_t{0};
        sub_.release(p);
        return true;
      }
      if (r.get_error() != iox::popo::ChunkReceiveResult::NO_CHUNK_AVAILABLE) {
        err_ = std::string("take: ") + iox::popo::asStringLiteral(r.get_error());
        return false;
      }
      if (sp_.spin()) {
        err_ = "timed out";
        return false;
      }
    }
  }
  const std::string& error() const { return err_; }

 private:
  iox::popo::UntypedSubscriber& sub_;
  std::size_t size_;
  Spin sp_;
  std::string err_;
};

class Iceoryx final : public Transport {
 public:
  const char* name() const override { return "iceoryx"; }
  Kind kind() const override { return Kind::peer; }
  std::string description() const override {
    return "iceoryx 2.0 UntypedPublisher/UntypedSubscriber, zero-copy loan/publish + "
           "take/release, WAIT_FOR_CONSUMER + BLOCK_PRODUCER, queue 256, busy-polled take()";
  }
  std::string unavailable() const override {
    if (!roudi_running()) {
      return "the iox-roudi daemon is not running (bench/run_ipc_bench.sh starts it; or run "
             "iox-roudi yourself)";
    }
    return {};
  }
  bool clean_exit() const override { return true; }
  bool side_a(const CellSpec& c, SharedBlock& s) override { return run(c, s, true); }
  bool side_b(const CellSpec& c, SharedBlock& s) override { return run(c, s, false); }

 private:
  static bool run(const CellSpec& c, SharedBlock& s, bool is_a) {
    auto& err = is_a ? s.a_err : s.b_err;
    const std::string me = std::string("ipcb-") + (is_a ? "a-" : "b-") + std::to_string(::getpid());
    // The library logs every registration at its default level (verbose).
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(
        iox::log::LogLevel::kWarn, iox::log::LogLevelOutput::kHideLogLevel);
    iox::runtime::PoshRuntime::initRuntime(iox_string<iox::RuntimeName_t>(me));
    const std::string inst = "c" + c.tag;
    const bool lat = c.workload == Workload::latency;
    iox::popo::PublisherOptions po;
    po.historyCapacity = 0;
    po.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    iox::popo::SubscriberOptions so;
    so.queueCapacity = iox::MAX_SUBSCRIBER_QUEUE_CAPACITY;
    so.historyRequest = 0;
    so.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    // A publishes "req" and (latency) subscribes "resp"; B the other way round.
    const bool has_pub = is_a || lat, has_sub = !is_a || lat;
    const char* pub_event = is_a ? "req" : "resp";
    const char* sub_event = is_a ? "resp" : "req";
    iox::cxx::optional<iox::popo::UntypedPublisher> pub;
    iox::cxx::optional<iox::popo::UntypedSubscriber> sub;
    if (has_pub)
      pub.emplace(iox::capro::ServiceDescription{id("ipcb"), id(inst), id(pub_event)}, po);
    if (has_sub)
      sub.emplace(iox::capro::ServiceDescription{id("ipcb"), id(inst), id(sub_event)}, so);
    // Discovery runs in RouDi's loop (every 100 ms): wait until both
    // directions are connected before anything is sent.
    Spin sp(s, c.deadline_ns);
    for (;;) {
      const bool pub_ok = !has_pub || pub->hasSubscribers();
      const bool sub_ok =
          !has_sub || sub->getSubscriptionState() == iox::SubscribeState::SUBSCRIBED;
      if (pub_ok && sub_ok) break;
      if (sp.spin()) {
        err.set("publisher / subscriber never matched (RouDi discovery)");
        return false;
      }
      ::usleep(1000);
    }
    bool ok;
    if (!lat) {
      if (is_a) {
        IoxTx tx(*pub, c.size, s, c.deadline_ns);
        ok = throughput_a(c, s, tx);
      } else {
        IoxRx rx(*sub, c.size, s, c.deadline_ns);
        ok = throughput_b(c, s, rx);
      }
    } else {
      IoxTx tx(*pub, c.size, s, c.deadline_ns);
      IoxRx rx(*sub, c.size, s, c.deadline_ns);
      ok = is_a ? latency_a(c, s, tx, rx) : latency_b(c, s, tx, rx);
    }
    return ok;
  }
};

}  // namespace

TransportPtr make_iceoryx() {
  return std::make_unique<Iceoryx>();
}

#else

namespace {
class IceoryxMissing final : public Transport {
 public:
  const char* name() const override { return "iceoryx"; }
  Kind kind() const override { return Kind::peer; }
  std::string description() const override { return "iceoryx publish / subscribe"; }
  std::string unavailable() const override {
    return "iceoryx_posh (CMake package, Debian libiceoryx-posh-dev) was not found at "
           "configure time (scripts/setup-deps.sh --bench installs it where packaged)";
  }
  bool side_a(const CellSpec&, SharedBlock&) override { return false; }
  bool side_b(const CellSpec&, SharedBlock&) override { return false; }
};
}  // namespace

TransportPtr make_iceoryx() {
  return std::make_unique<IceoryxMissing>();
}

#endif

}  // namespace ipcb
