// `zmq`: ZeroMQ (libzmq C API) PAIR sockets over ipc:// (a Unix socket path
// in /tmp); A binds, B connects; blocking zmq_send / zmq_recv with
// ZMQ_SNDTIMEO / ZMQ_RCVTIMEO up to the cell deadline, default high-water
// marks (1000). Each worker has its own context, created after it was
// pinned, so ZeroMQ's I/O thread shares that worker's CPU. The parent
// removes the socket file after the cell.
#include "transport.hpp"

#if IPCB_HAVE_ZMQ
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "message.hpp"
#include "workload.hpp"
#endif

namespace ipcb {

#if IPCB_HAVE_ZMQ
namespace {

std::string zerr(const char* what) {
  return std::string(what) + ": " + zmq_strerror(zmq_errno());
}

class ZmqTx {
 public:
  ZmqTx(void* sock, std::size_t size) : sock_(sock), size_(size), buf_(size) {}
  bool send(std::uint64_t seq) {
    fill_msg(buf_.data(), size_, seq);
    while (zmq_send(sock_, buf_.data(), size_, 0) < 0) {
      if (zmq_errno() == EINTR) continue;
      err_ = zmq_errno() == EAGAIN ? "timed out" : zerr("zmq_send");
      return false;
    }
    return true;
  }
  bool flush() { return true; }
  const std::string& error() const { return err_; }

 private:
  void* sock_;
  std::size_t size_;
  std::vector<char> buf_;
  std::string err_;
};

class ZmqRx {
 public:
  ZmqRx(void* sock, std::size_t size) : sock_(sock), size_(size), buf_(size) {}
  bool recv(std::uint64_t& seq, bool& intact) {
    int n;
    while ((n = zmq_recv(sock_, buf_.data(), buf_.size(), 0)) < 0) {
      if (zmq_errno() == EINTR) continue;
      err_ = zmq_errno() == EAGAIN ? "timed out" : zerr("zmq_recv");
      return false;
    }
    intact = static_cast<std::size_t>(n) == size_ && check_msg(buf_.data(), size_, seq);
    if (n < 8) seq = ~std::uint64_t{0};
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  void* sock_;
  std::size_t size_;
  std::vector<char> buf_;
  std::string err_;
};

class Zmq final : public Transport {
 public:
  const char* name() const override { return "zmq"; }
  Kind kind() const override { return Kind::peer; }
  std::string description() const override {
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    return "ZeroMQ " + std::to_string(major) + "." + std::to_string(minor) + "." +
           std::to_string(patch) +
           " PAIR over ipc://, blocking zmq_send / zmq_recv, default HWM; its I/O thread "
           "shares the worker's CPU";
  }
  std::string prepare(const CellSpec& c) override {
    path_ = "/tmp/ipcb." + c.tag + ".zmq";
    ::unlink(path_.c_str());
    return {};
  }
  // libzmq 4.3 leaves the socket file of a bound ipc:// endpoint behind. It
  // is removed only after both workers are gone: zmq_connect() returns before
  // the I/O thread has connected, so "ready" does not mean "connected".
  std::string cleanup(const CellSpec&) override {
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
    return {};
  }
  bool side_a(const CellSpec& c, SharedBlock& s) override { return run(c, s, true); }
  bool side_b(const CellSpec& c, SharedBlock& s) override { return run(c, s, false); }

 private:
  bool run(const CellSpec& c, SharedBlock& s, bool is_a) {
    auto& err = is_a ? s.a_err : s.b_err;
    void* ctx = zmq_ctx_new();
    if (!ctx) {
      err.set(zerr("zmq_ctx_new"));
      return false;
    }
    void* sock = zmq_socket(ctx, ZMQ_PAIR);
    bool ok = sock != nullptr;
    if (!ok) err.set(zerr("zmq_socket"));
    if (ok) {
      const std::uint64_t now = rwbench::now_ns();
      const int ms = static_cast<int>(c.deadline_ns > now ? (c.deadline_ns - now) / 1'000'000 : 1);
      const int linger = 2000;  // deliver what is queued at close, but not forever
      zmq_setsockopt(sock, ZMQ_SNDTIMEO, &ms, sizeof ms);
      zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof ms);
      zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
      const std::string ep = "ipc://" + path_;
      if (is_a) {
        ok = zmq_bind(sock, ep.c_str()) == 0;
        if (!ok) err.set(zerr("zmq_bind"));
        if (ok) s.created.store(1, std::memory_order_release);
      } else {
        Spin sp(s, c.deadline_ns);
        while (ok && s.created.load(std::memory_order_acquire) == 0)
          if (sp.spin()) {
            err.set("the binding side never got ready");
            ok = false;
          }
        if (ok) ok = zmq_connect(sock, ep.c_str()) == 0;
        if (!ok && err.text[0] == 0) err.set(zerr("zmq_connect"));
      }
    }
    if (ok) {
      ZmqTx tx(sock, c.size);
      ZmqRx rx(sock, c.size);
      if (c.workload == Workload::throughput) {
        ok = is_a ? throughput_a(c, s, tx) : throughput_b(c, s, rx);
      } else {
        ok = is_a ? latency_a(c, s, tx, rx) : latency_b(c, s, tx, rx);
      }
    }
    if (sock) zmq_close(sock);
    zmq_ctx_term(ctx);
    return ok;
  }
  std::string path_;
};

}  // namespace

TransportPtr make_zmq() {
  return std::make_unique<Zmq>();
}

#else

namespace {
class ZmqMissing final : public Transport {
 public:
  const char* name() const override { return "zmq"; }
  Kind kind() const override { return Kind::peer; }
  std::string description() const override { return "ZeroMQ PAIR over ipc://"; }
  std::string unavailable() const override {
    return "zmq.h / libzmq were not found at configure time (install libzmq3-dev: "
           "scripts/setup-deps.sh --bench)";
  }
  bool side_a(const CellSpec&, SharedBlock&) override { return false; }
  bool side_b(const CellSpec&, SharedBlock&) override { return false; }
};
}  // namespace

TransportPtr make_zmq() {
  return std::make_unique<ZmqMissing>();
}

#endif

}  // namespace ipcb
