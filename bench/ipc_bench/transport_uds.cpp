// `uds`: a Unix domain stream socket pair (socketpair(AF_UNIX, SOCK_STREAM)),
// blocking read() / write(), default buffer sizes.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "fd_stream.hpp"

namespace ipcb {
namespace {

class Uds final : public FdStreamTransport {
 public:
  Uds() { is_socket_ = true; }
  const char* name() const override { return "uds"; }
  Kind kind() const override { return Kind::kernel; }
  std::string description() const override {
    return "socketpair(AF_UNIX, SOCK_STREAM), blocking write() per message, read() up to 64 KiB";
  }
  std::string prepare(const CellSpec&) override {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return std::string("socketpair: ") + std::strerror(errno);
    }
    fds_.a_tx = fds_.a_rx = sv[0];
    fds_.b_tx = fds_.b_rx = sv[1];
    return {};
  }
};

}  // namespace

TransportPtr make_uds() {
  return std::make_unique<Uds>();
}

}  // namespace ipcb
