// `mq`: POSIX message queues (mq_open), one per direction, blocking
// mq_timedsend / mq_timedreceive (the deadline only bounds the wait). Queue
// depth is fs.mqueue.msg_max (10 by default: what an unprivileged process
// may ask for) and the message size is the cell's, which must not exceed
// fs.mqueue.msgsize_max (8192 by default). The parent creates the queues,
// unlinks the names at once (before the fork) and the workers use the
// inherited descriptors: nothing is ever left in /dev/mqueue.
#include <fcntl.h>
#include <mqueue.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "message.hpp"
#include "transport.hpp"
#include "workload.hpp"

namespace ipcb {
namespace {

long read_proc_long(const char* path, long fallback) {
  std::ifstream f(path);
  long v = 0;
  return (f >> v) ? v : fallback;
}

timespec realtime_deadline(std::uint64_t mono_deadline) {
  timespec rt;
  ::clock_gettime(CLOCK_REALTIME, &rt);
  const std::uint64_t now = rwbench::now_ns();
  const std::uint64_t left = mono_deadline > now ? mono_deadline - now : 0;
  const std::uint64_t at = static_cast<std::uint64_t>(rt.tv_sec) * 1'000'000'000ull +
                           static_cast<std::uint64_t>(rt.tv_nsec) + left;
  return {static_cast<time_t>(at / 1'000'000'000ull), static_cast<long>(at % 1'000'000'000ull)};
}

class MqTx {
 public:
  MqTx(mqd_t q, std::size_t size, std::uint64_t deadline)
      : q_(q), size_(size), buf_(size), abs_(realtime_deadline(deadline)) {}
  bool send(std::uint64_t seq) {
    fill_msg(buf_.data(), size_, seq);
    while (::mq_timedsend(q_, buf_.data(), size_, 0, &abs_) != 0) {
      if (errno == EINTR) continue;
      err_ = std::string("mq_timedsend: ") + std::strerror(errno);
      return false;
    }
    return true;
  }
  bool flush() { return true; }
  const std::string& error() const { return err_; }

 private:
  mqd_t q_;
  std::size_t size_;
  std::vector<char> buf_;
  timespec abs_;
  std::string err_;
};

class MqRx {
 public:
  MqRx(mqd_t q, std::size_t size, std::uint64_t deadline)
      : q_(q), size_(size), buf_(size), abs_(realtime_deadline(deadline)) {}
  bool recv(std::uint64_t& seq, bool& intact) {
    ssize_t n;
    while ((n = ::mq_timedreceive(q_, buf_.data(), buf_.size(), nullptr, &abs_)) < 0) {
      if (errno == EINTR) continue;
      err_ = std::string("mq_timedreceive: ") + std::strerror(errno);
      return false;
    }
    intact = static_cast<std::size_t>(n) == size_ && check_msg(buf_.data(), size_, seq);
    if (static_cast<std::size_t>(n) < 8) seq = ~std::uint64_t{0};
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  mqd_t q_;
  std::size_t size_;
  std::vector<char> buf_;
  timespec abs_;
  std::string err_;
};

class PosixMq final : public Transport {
 public:
  const char* name() const override { return "mq"; }
  Kind kind() const override { return Kind::kernel; }
  std::string description() const override {
    return "POSIX mq_open queue per direction, depth fs.mqueue.msg_max (" +
           std::to_string(depth()) + "), mq_timedsend/mq_timedreceive, one message per call";
  }
  std::string unsupported(Workload, std::size_t size) const override {
    const long max = read_proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
    if (static_cast<long>(size) > max) {
      return "message size " + std::to_string(size) + " exceeds fs.mqueue.msgsize_max (" +
             std::to_string(max) + "); raise it with sysctl to measure";
    }
    return {};
  }
  std::string prepare(const CellSpec& c) override {
    const std::string base = "/ipcb." + c.tag + ".";
    if (std::string e = make(base + "req", c.size, req_); !e.empty()) return e;
    if (c.workload == Workload::latency) {
      if (std::string e = make(base + "resp", c.size, resp_); !e.empty()) return e;
    }
    return {};
  }
  void after_fork() override { close_all(); }
  std::string cleanup(const CellSpec&) override {
    close_all();
    return {};
  }
  bool side_a(const CellSpec& c, SharedBlock& s) override {
    std::snprintf(s.note, sizeof s.note, "queue depth %ld", depth());
    MqTx tx(req_, c.size, c.deadline_ns);
    if (c.workload == Workload::throughput) return throughput_a(c, s, tx);
    MqRx rx(resp_, c.size, c.deadline_ns);
    return latency_a(c, s, tx, rx);
  }
  bool side_b(const CellSpec& c, SharedBlock& s) override {
    MqRx rx(req_, c.size, c.deadline_ns);
    if (c.workload == Workload::throughput) return throughput_b(c, s, rx);
    MqTx tx(resp_, c.size, c.deadline_ns);
    return latency_b(c, s, tx, rx);
  }

 private:
  static long depth() { return read_proc_long("/proc/sys/fs/mqueue/msg_max", 10); }
  static std::string make(const std::string& name, std::size_t size, mqd_t& out) {
    mq_attr attr{};
    attr.mq_maxmsg = depth();
    attr.mq_msgsize = static_cast<long>(size);
    out = ::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
    if (out == static_cast<mqd_t>(-1)) {
      return "mq_open " + name + " (depth " + std::to_string(attr.mq_maxmsg) + ", msgsize " +
             std::to_string(size) + "): " + std::strerror(errno);
    }
    // Unlinked at once: the workers use the descriptors they inherit.
    ::mq_unlink(name.c_str());
    return {};
  }
  void close_all() {
    for (mqd_t* q : {&req_, &resp_}) {
      if (*q != static_cast<mqd_t>(-1)) ::mq_close(*q);
      *q = static_cast<mqd_t>(-1);
    }
  }
  mqd_t req_ = static_cast<mqd_t>(-1), resp_ = static_cast<mqd_t>(-1);
};

}  // namespace

TransportPtr make_posix_mq() {
  return std::make_unique<PosixMq>();
}

}  // namespace ipcb
