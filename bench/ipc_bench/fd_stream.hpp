// Byte-stream transports over file descriptors (pipe, Unix stream socket,
// TCP): one write() per message on the sending side; the receiving side
// reads whatever is there (up to 64 KiB at a time) and takes messages out of
// its buffer, the way a stream consumer is written. The parent creates the
// descriptors before the fork; each worker closes the ones that are not its
// own, so a dead peer shows up as end-of-file / EPIPE.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "message.hpp"
#include "transport.hpp"
#include "workload.hpp"

namespace ipcb {

class FdTx {
 public:
  FdTx(int fd, std::size_t size) : fd_(fd), size_(size), buf_(size) {}
  bool send(std::uint64_t seq) {
    fill_msg(buf_.data(), size_, seq);
    std::size_t off = 0;
    while (off < size_) {
      const ssize_t n = ::write(fd_, buf_.data() + off, size_ - off);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        err_ = n < 0 ? std::string("write: ") + std::strerror(errno) : "write returned 0";
        return false;
      }
    }
    return true;
  }
  bool flush() { return true; }
  const std::string& error() const { return err_; }

 private:
  int fd_;
  std::size_t size_;
  std::vector<unsigned char> buf_;
  std::string err_;
};

class FdRx {
 public:
  static constexpr std::size_t kChunk = 64 * 1024;
  FdRx(int fd, std::size_t size) : fd_(fd), size_(size), buf_(kChunk + size) {}
  bool recv(std::uint64_t& seq, bool& intact) {
    while (end_ - pos_ < size_) {
      if (buf_.size() - end_ < size_) {  // compact: keep the partial message
        std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
      }
      const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (n > 0) {
        end_ += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        err_ = n == 0 ? "end of stream (peer closed)"
               : (errno == EAGAIN || errno == EWOULDBLOCK)
                   ? "timed out"
                   : std::string("read: ") + std::strerror(errno);
        return false;
      }
    }
    intact = check_msg(buf_.data() + pos_, size_, seq);
    pos_ += size_;
    if (pos_ == end_) pos_ = end_ = 0;
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  int fd_;
  std::size_t size_;
  std::vector<unsigned char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  std::string err_;
};

// Send and receive timeouts up to the cell deadline (sockets only).
inline void set_socket_timeouts(int fd, std::uint64_t deadline_ns) {
  const std::uint64_t now = rwbench::now_ns();
  const std::uint64_t left = deadline_ns > now ? deadline_ns - now : 1'000'000;
  timeval tv{static_cast<time_t>(left / 1'000'000'000ull),
             static_cast<suseconds_t>((left % 1'000'000'000ull) / 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

inline void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A transport made of descriptors: A writes a_tx and reads a_rx, B reads
// b_rx and writes b_tx (latency); throughput uses a_tx -> b_rx only.
class FdStreamTransport : public Transport {
 public:
  bool side_a(const CellSpec& c, SharedBlock& s) override {
    close_pair(fds_.b_tx, fds_.b_rx);
    for (int fd : {fds_.a_tx, fds_.a_rx})
      if (fd >= 0 && is_socket_) set_socket_timeouts(fd, c.deadline_ns);
    FdTx tx(fds_.a_tx, c.size);
    if (c.workload == Workload::throughput) return throughput_a(c, s, tx);
    FdRx rx(fds_.a_rx, c.size);
    return latency_a(c, s, tx, rx);
  }
  bool side_b(const CellSpec& c, SharedBlock& s) override {
    close_pair(fds_.a_tx, fds_.a_rx);
    for (int fd : {fds_.b_tx, fds_.b_rx})
      if (fd >= 0 && is_socket_) set_socket_timeouts(fd, c.deadline_ns);
    FdRx rx(fds_.b_rx, c.size);
    if (c.workload == Workload::throughput) return throughput_b(c, s, rx);
    FdTx tx(fds_.b_tx, c.size);
    return latency_b(c, s, tx, rx);
  }
  void after_fork() override { close_all(); }
  std::string cleanup(const CellSpec&) override {
    close_all();
    return {};
  }

 protected:
  struct Fds {
    int a_tx = -1, a_rx = -1, b_tx = -1, b_rx = -1;
  };
  Fds fds_;
  bool is_socket_ = false;

  // The same descriptor may serve both directions of one side (sockets).
  static void close_pair(int& tx, int& rx) {
    if (rx == tx) rx = -1;
    close_fd(tx);
    close_fd(rx);
  }
  void close_all() {
    close_pair(fds_.a_tx, fds_.a_rx);
    close_pair(fds_.b_tx, fds_.b_rx);
  }
};

}  // namespace ipcb
