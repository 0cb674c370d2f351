// `tcp`: one TCP connection over loopback (127.0.0.1, ephemeral port),
// TCP_NODELAY on both ends, blocking read() / write(), default buffers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd_stream.hpp"

namespace ipcb {
namespace {

class Tcp final : public FdStreamTransport {
 public:
  Tcp() { is_socket_ = true; }
  const char* name() const override { return "tcp"; }
  Kind kind() const override { return Kind::kernel; }
  std::string description() const override {
    return "TCP over 127.0.0.1, TCP_NODELAY, blocking write() per message, read() up to 64 KiB";
  }
  std::string prepare(const CellSpec&) override {
    auto sys = [](const char* what) { return std::string(what) + ": " + std::strerror(errno); };
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) return sys("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    std::string err;
    int cl = -1, sv = -1;
    if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      err = sys("bind");
    } else if (::listen(ls, 1) != 0) {
      err = sys("listen");
    } else if (::getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      err = sys("getsockname");
    } else if ((cl = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
      err = sys("socket");
    } else if (::connect(cl, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      err = sys("connect");
    } else if ((sv = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC)) < 0) {
      err = sys("accept");
    }
    ::close(ls);
    if (!err.empty()) {
      if (cl >= 0) ::close(cl);
      return err;
    }
    const int one = 1;
    ::setsockopt(cl, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(sv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fds_.a_tx = fds_.a_rx = cl;
    fds_.b_tx = fds_.b_rx = sv;
    return {};
  }
};

}  // namespace

TransportPtr make_tcp() {
  return std::make_unique<Tcp>();
}

}  // namespace ipcb
