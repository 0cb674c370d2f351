// `boost-mq`: boost::interprocess::message_queue (a ring of fixed-size slots
// in a named shared-memory object, guarded by a process-shared mutex and
// condition variables), one per direction, timed_send / timed_receive. Depth:
// 64 KiB of payload, like a pipe (1024 x 64 B, 16 x 4 KiB). The parent
// creates the queues, the workers open them by name, and the parent removes
// the names as soon as both workers have them open (and again after the cell).
#include "transport.hpp"

#if IPCB_HAVE_BOOST_MQ
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cstdio>
#include <memory>
#include <vector>

#include "message.hpp"
#include "workload.hpp"
#endif

namespace ipcb {

#if IPCB_HAVE_BOOST_MQ
namespace {

namespace bip = boost::interprocess;

boost::posix_time::ptime abs_deadline(std::uint64_t mono_deadline) {
  const std::uint64_t now = rwbench::now_ns();
  const std::uint64_t left = mono_deadline > now ? mono_deadline - now : 0;
  return boost::posix_time::microsec_clock::universal_time() +
         boost::posix_time::microseconds(static_cast<std::int64_t>(left / 1000));
}

class BmqTx {
 public:
  BmqTx(bip::message_queue& q, std::size_t size, std::uint64_t deadline)
      : q_(q), size_(size), buf_(size), abs_(abs_deadline(deadline)) {}
  bool send(std::uint64_t seq) {
    fill_msg(buf_.data(), size_, seq);
    try {
      if (q_.timed_send(buf_.data(), size_, 0, abs_)) return true;
      err_ = "timed out";
    } catch (const std::exception& e) {
      err_ = e.what();
    }
    return false;
  }
  bool flush() { return true; }
  const std::string& error() const { return err_; }

 private:
  bip::message_queue& q_;
  std::size_t size_;
  std::vector<char> buf_;
  boost::posix_time::ptime abs_;
  std::string err_;
};

class BmqRx {
 public:
  BmqRx(bip::message_queue& q, std::size_t size, std::uint64_t deadline)
      : q_(q), size_(size), buf_(size), abs_(abs_deadline(deadline)) {}
  bool recv(std::uint64_t& seq, bool& intact) {
    bip::message_queue::size_type got = 0;
    unsigned prio = 0;
    try {
      if (!q_.timed_receive(buf_.data(), buf_.size(), got, prio, abs_)) {
        err_ = "timed out";
        return false;
      }
    } catch (const std::exception& e) {
      err_ = e.what();
      return false;
    }
    intact = got == size_ && check_msg(buf_.data(), size_, seq);
    if (got < 8) seq = ~std::uint64_t{0};
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  bip::message_queue& q_;
  std::size_t size_;
  std::vector<char> buf_;
  boost::posix_time::ptime abs_;
  std::string err_;
};

class BoostMq final : public Transport {
 public:
  const char* name() const override { return "boost-mq"; }
  Kind kind() const override { return Kind::peer; }
  std::string description() const override {
    return "boost::interprocess::message_queue per direction (depth: 64 KiB of payload), "
           "timed_send / timed_receive";
  }
  std::string prepare(const CellSpec& c) override {
    names_.clear();
    names_.push_back("ipcb." + c.tag + ".bmq.req");
    if (c.workload == Workload::latency) names_.push_back("ipcb." + c.tag + ".bmq.resp");
    try {
      for (const auto& n : names_) {
        bip::message_queue q(bip::create_only, n.c_str(), depth(c.size), c.size);
      }
    } catch (const std::exception& e) {
      return std::string("message_queue create: ") + e.what();
    }
    return {};
  }
  void on_ready(const CellSpec&) override { remove_all(); }
  std::string cleanup(const CellSpec&) override {
    remove_all();
    names_.clear();
    return {};
  }
  bool side_a(const CellSpec& c, SharedBlock& s) override {
    std::snprintf(s.note, sizeof s.note, "queue depth %zu", depth(c.size));
    return run(c, s, true);
  }
  bool side_b(const CellSpec& c, SharedBlock& s) override { return run(c, s, false); }

 private:
  static std::size_t depth(std::size_t size) { return std::max<std::size_t>(16, 65536 / size); }
  bool run(const CellSpec& c, SharedBlock& s, bool is_a) {
    auto& err = is_a ? s.a_err : s.b_err;
    std::unique_ptr<bip::message_queue> req, resp;
    try {
      req = std::make_unique<bip::message_queue>(bip::open_only, names_[0].c_str());
      if (names_.size() > 1) {
        resp = std::make_unique<bip::message_queue>(bip::open_only, names_[1].c_str());
      }
    } catch (const std::exception& e) {
      err.set(std::string("message_queue open: ") + e.what());
      return false;
    }
    if (c.workload == Workload::throughput) {
      if (is_a) {
        BmqTx tx(*req, c.size, c.deadline_ns);
        return throughput_a(c, s, tx);
      }
      BmqRx rx(*req, c.size, c.deadline_ns);
      return throughput_b(c, s, rx);
    }
    if (is_a) {
      BmqTx tx(*req, c.size, c.deadline_ns);
      BmqRx rx(*resp, c.size, c.deadline_ns);
      return latency_a(c, s, tx, rx);
    }
    BmqRx rx(*req, c.size, c.deadline_ns);
    BmqTx tx(*resp, c.size, c.deadline_ns);
    return latency_b(c, s, tx, rx);
  }
  void remove_all() {
    for (const auto& n : names_)
      bip::message_queue::remove(n.c_str());
  }
  std::vector<std::string> names_;
};

}  // namespace

TransportPtr make_boost_mq() {
  return std::make_unique<BoostMq>();
}

#else

namespace {
class BoostMqMissing final : public Transport {
 public:
  const char* name() const override { return "boost-mq"; }
  Kind kind() const override { return Kind::peer; }
  std::string description() const override { return "boost::interprocess::message_queue"; }
  std::string unavailable() const override {
    return "boost/interprocess/ipc/message_queue.hpp was not found at configure time "
           "(install libboost-dev: scripts/setup-deps.sh --bench)";
  }
  bool side_a(const CellSpec&, SharedBlock&) override { return false; }
  bool side_b(const CellSpec&, SharedBlock&) override { return false; }
};
}  // namespace

TransportPtr make_boost_mq() {
  return std::make_unique<BoostMqMissing>();
}

#endif

}  // namespace ipcb
