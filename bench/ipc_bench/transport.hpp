// The interface every ipc_bench transport implements, and the list of them.
//
// A cell runs in three processes: the parent (this one) prepares what must be
// inherited (pipes, socket pairs, queue names), forks worker A (client /
// producer, pinned to cpu_a) and worker B (echo / consumer, pinned to
// cpu_b), and only waits; the workers build their endpoints, meet, and run
// the workload of workload.hpp. Every object with a name is removed by the
// parent in cleanup() even if a worker was killed.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cell.hpp"

namespace ipcb {

enum class Kind {
  baseline,  // the floor
  ringwire,  // ringwire::ipc::Channel
  kernel,    // pipe, Unix socket, POSIX mq, TCP: data goes through the kernel
  peer,      // other libraries (boost::interprocess, ZeroMQ, iceoryx)
};
const char* kind_name(Kind k) noexcept;

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  virtual Kind kind() const = 0;
  // One line: what exactly is measured (API, waiting, batching).
  virtual std::string description() const = 0;
  // Non-empty: the transport cannot run here at all (why).
  virtual std::string unavailable() const { return {}; }
  // Non-empty: this workload / message size is skipped (why).
  virtual std::string unsupported(Workload, std::size_t) const { return {}; }

  // Parent, before the fork. Non-empty: the cell cannot run (why).
  virtual std::string prepare(const CellSpec&) { return {}; }
  // Parent, right after both workers were forked: drop inherited copies.
  virtual void after_fork() {}
  // Parent, once both workers reported ready (or one of them gave up).
  virtual void on_ready(const CellSpec&) {}
  // Parent, after both workers were reaped; always called after prepare().
  // Returns a note about anything it had to remove (a leak), else "".
  virtual std::string cleanup(const CellSpec&) { return {}; }

  // Workers, already pinned. False on failure, with the side's ErrText set.
  virtual bool side_a(const CellSpec&, SharedBlock&) = 0;
  virtual bool side_b(const CellSpec&, SharedBlock&) = 0;
  // The workers leave through exit() (static destructors run) instead of
  // _exit(): for libraries that deregister from a daemon at exit.
  virtual bool clean_exit() const { return false; }
};

using TransportPtr = std::unique_ptr<Transport>;

// One per file (transport_*.cpp).
TransportPtr make_floor();
TransportPtr make_channel_spin();
TransportPtr make_channel_yield();
TransportPtr make_channel_futex();
TransportPtr make_pipe();
TransportPtr make_uds();
TransportPtr make_posix_mq();
TransportPtr make_tcp();
TransportPtr make_boost_mq();
TransportPtr make_zmq();
TransportPtr make_iceoryx();

// All of them, in report order.
std::vector<TransportPtr> all_transports();

}  // namespace ipcb
