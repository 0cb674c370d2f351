// spsc_queue scenarios: throughput (producer -> consumer, every message
// verified) and latency (ping-pong, round trip per message), over two threads
// or two processes sharing a segment.
#include "run.hpp"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <thread>

#include "message.hpp"
#include "queue_ops.hpp"
#include "ringwire/shm/shm_segment.hpp"

namespace ringwire::tools {
namespace {

using core::Errc;
using core::Status;
using shm::PeerRole;
using shm::ShmSegment;

constexpr std::array<std::size_t, 11> kPayloads = {0,   8,   16,   32,   64,  128,
                                                   256, 512, 1024, 2048, 4096};

// What this process does in a process-mode run.
struct Side {
  bool creates;   // creates the segment (else opens it by name)
  bool producer;  // producer / pinger (else consumer / echo side)
  bool forks;     // forks the other side ("both" mode)
};

// In "both" mode the parent creates the segment and is the consumer
// (throughput) or the pinger (latency); the forked child opens it by name and
// plays the other part. Run separately, the consumer creates and the producer
// opens.
Side side_for(const Options& opt) {
  switch (opt.role) {
    case Role::both:
      return {true, opt.latency, true};
    case Role::consumer:
      return {true, false, false};
    case Role::producer:
      break;
  }
  return {false, true, false};
}

Status pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    return {Errc::invalid_argument, "cannot pin to CPU " + std::to_string(cpu)};
  }
  return {};
}

Report failure(int code, std::string msg) {
  Report r;
  r.exit_code = code;
  r.error = std::move(msg);
  return r;
}
Report failure(const Status& st) {
  return failure(core::exit_code_for(st.code()), st.message());
}

Report wait_failure(WaitResult r, const char* waiting_for) {
  if (r == WaitResult::peer_dead) {
    return failure(core::kExitPeerDied,
                   std::string("peer process died while waiting for ") + waiting_for);
  }
  return failure(core::kExitInvalid, std::string("timed out waiting for ") + waiting_for);
}

// Checks one received message against the sequence we expect next.
template <std::size_t P>
void check(const Message<P>& m, std::uint64_t& next, Verification& v) {
  ++v.received;
  if (!message_intact(m)) {
    ++v.corrupt;
    ++next;
    return;
  }
  if (m.seq == next) {
    ++next;
  } else if (m.seq > next) {
    v.lost += m.seq - next;
    next = m.seq + 1;
  } else {
    ++v.out_of_order;
  }
}

// ---- the four loops -----------------------------------------------------------

template <class Q, std::size_t P>
Report produce(Q& q, const Options& opt, const Waiter& w) {
  Report rep;
  const auto t0 = core::now_ns();
  std::uint64_t seq = 0;
  while (seq < opt.iters) {
    WaitResult r;
    if (opt.batch <= 1) {
      Message<P> m;
      fill_message(m, seq);
      r = push_one(q, m, w);
      if (r == WaitResult::ok) ++seq;
    } else {
      std::size_t pushed = 0;
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(opt.batch, opt.iters - seq));
      r = push_batch(q, k, pushed, w,
                     [&](Message<P>& m, std::size_t i) { fill_message(m, seq + i); });
      seq += pushed;
    }
    if (r != WaitResult::ok) return wait_failure(r, "space in the queue (consumer)");
  }
  rep.elapsed_s = static_cast<double>(core::now_ns() - t0) / 1e9;
  rep.messages = seq;
  return rep;
}

template <class Q, std::size_t P>
Report consume(Q& q, const Options& opt, const Waiter& w) {
  Report rep;
  std::uint64_t next = 0, t0 = 0;
  Verification& v = rep.verify;
  auto visit = [&](const Message<P>& m) { check(m, next, v); };
  while (v.received < opt.iters) {
    WaitResult r;
    if (opt.batch <= 1) {
      Message<P> m;
      r = pop_one(q, m, w);
      if (r == WaitResult::ok) visit(m);
    } else {
      std::size_t popped = 0;
      const auto k =
          static_cast<std::size_t>(std::min<std::uint64_t>(opt.batch, opt.iters - v.received));
      r = pop_batch(q, k, popped, w, visit);
    }
    if (t0 == 0) t0 = core::now_ns();  // clock starts at the first message
    if (r == WaitResult::peer_dead) {
      // The producer may have finished and exited: take what it left behind.
      Message<P> m;
      while (v.received < opt.iters && q.try_pop(m))
        visit(m);
      if (v.received < opt.iters) {
        const Verification seen = v;  // `v` aliases rep.verify, which failure() replaces
        rep = failure(core::kExitPeerDied, "producer died after " + std::to_string(seen.received) +
                                               " of " + std::to_string(opt.iters) + " messages");
        rep.verify = seen;
        rep.has_results = true;
        return rep;
      }
    } else if (r != WaitResult::ok) {
      return wait_failure(r, "messages from the producer");
    }
  }
  rep.elapsed_s = static_cast<double>(core::now_ns() - t0) / 1e9;
  rep.messages = v.received;
  rep.has_results = true;
  return rep;
}

// Ping side of the latency test: one message in flight, timed per round trip.
template <class Q, std::size_t P>
Report ping(Q& out, Q& in, const Options& opt, const Waiter& w) {
  Report rep;
  rep.rtt_ns.reserve(opt.iters);
  std::uint64_t next = 0;
  const auto start = core::now_ns();
  for (std::uint64_t i = 0; i < opt.iters; ++i) {
    Message<P> m;
    fill_message(m, i);
    const auto t0 = core::now_ns();
    if (auto r = push_one(out, m, w); r != WaitResult::ok) return wait_failure(r, "the echo side");
    if (auto r = pop_one(in, m, w); r != WaitResult::ok) return wait_failure(r, "an echo");
    rep.rtt_ns.push_back(core::now_ns() - t0);
    check(m, next, rep.verify);
  }
  rep.elapsed_s = static_cast<double>(core::now_ns() - start) / 1e9;
  rep.messages = opt.iters;
  std::sort(rep.rtt_ns.begin(), rep.rtt_ns.end());
  rep.has_results = true;
  return rep;
}

template <class Q, std::size_t P>
Report echo(Q& in, Q& out, const Options& opt, const Waiter& w) {
  Report rep;
  std::uint64_t next = 0;
  for (std::uint64_t i = 0; i < opt.iters; ++i) {
    Message<P> m;
    if (auto r = pop_one(in, m, w); r != WaitResult::ok) return wait_failure(r, "a ping");
    check(m, next, rep.verify);
    if (auto r = push_one(out, m, w); r != WaitResult::ok) return wait_failure(r, "the ping side");
  }
  rep.messages = opt.iters;
  if (!rep.verify.ok(opt.iters)) {
    return failure(core::kExitVerifyFailed, "echo side received corrupt or out-of-order pings");
  }
  return rep;
}

// ---- placement: heap for threads, a segment for processes --------------------

template <template <class> class Q, std::size_t P>
struct Layout {
  using Queue = Q<Message<P>>;
  static constexpr bool kLockfree = std::is_same_v<Queue, SpscRing<Message<P>>>;
  using Control = std::conditional_t<kLockfree, queue::SpscControl, queue::MutexQueueControl>;

  static shm::SegmentSpec spec(const Options& opt) {
    const int rings = opt.latency ? 2 : 1;
    shm::SegmentSpec s;
    if (opt.latency) {
      s.kind = kLockfree ? shm::SegmentKind::spsc_ring_pair : shm::SegmentKind::mutex_queue_pair;
    } else {
      s.kind = kLockfree ? shm::SegmentKind::spsc_ring : shm::SegmentKind::mutex_queue;
    }
    s.layout_hash = shm::layout_fingerprint(sizeof(Control), alignof(Control), sizeof(Message<P>),
                                            alignof(Message<P>),
                                            queue::slots_offset<Control, Message<P>>(), rings);
    s.capacity = opt.capacity;
    s.element_size = sizeof(Message<P>);
    s.payload_size = stride(opt.capacity) * static_cast<std::size_t>(rings);
    return s;
  }
  static std::size_t stride(std::uint64_t cap) {
    return queue::align_up(Queue::bytes_for(cap), 4096);
  }
  static void* ring_at(ShmSegment& seg, int i) {
    return static_cast<std::byte*>(seg.payload()) + stride(seg.header().capacity) * i;
  }
};

// Runs `body(queues...)` as this process's role once the peer has attached.
template <template <class> class Q, std::size_t P>
Report run_processes(const Options& opt, const Side side) {
  using L = Layout<Q, P>;
  using Queue = typename L::Queue;
  const auto spec = L::spec(opt);
  const int rings = opt.latency ? 2 : 1;
  const std::string name = opt.name.empty() ? "spsc_queue." + std::to_string(::getpid()) : opt.name;

  const bool is_producer = side.producer;
  pid_t child = -1;

  core::Result<ShmSegment> seg = Status(Errc::invalid_argument, "unset");
  if (side.creates) {
    shm::install_cleanup_handlers();
    seg = ShmSegment::create(name, spec);
    if (!seg) return failure(seg.status());
    for (int i = 0; i < rings; ++i) {
      auto q = Queue::create_in(L::ring_at(*seg, i), L::stride(opt.capacity), opt.capacity);
      if (!q) return failure(q.status());
    }
    seg->mark_ready();
    if (side.forks) {
      std::fflush(nullptr);
      child = ::fork();
      if (child < 0) return failure(core::kExitInvalid, "fork failed");
      if (child == 0) {
        Options copy = opt;
        copy.name = name;
        Report r = run_processes<Q, P>(copy, Side{false, !side.producer, false});
        if (r.exit_code != 0) std::fprintf(stderr, "ERROR: child process: %s\n", r.error.c_str());
        std::fflush(nullptr);
        ::_exit(r.exit_code);
      }
    }
  } else {
    seg = ShmSegment::open(name, spec);
    if (!seg) return failure(seg.status());
  }

  if (opt.pin) {
    if (auto st = pin_to(is_producer ? opt.pin->first : opt.pin->second); !st) return failure(st);
  }

  std::vector<Queue> qs;
  for (int i = 0; i < rings; ++i) {
    auto q = Queue::attach(L::ring_at(*seg, i), L::stride(seg->header().capacity));
    if (!q) return failure(q.status());
    qs.push_back(std::move(q.value()));
  }
  const PeerRole mine = is_producer ? PeerRole::producer : PeerRole::consumer;
  const PeerRole theirs = is_producer ? PeerRole::consumer : PeerRole::producer;
  seg->register_peer(mine);

  // Wait (bounded) for the other side to attach.
  const auto deadline = core::Deadline::after(
      std::chrono::nanoseconds(static_cast<std::uint64_t>(opt.timeout_s * 1e9)));
  while (seg->peer(theirs).empty()) {
    if (child > 0 && ::waitpid(child, nullptr, WNOHANG) == child) {
      return failure(core::kExitInvalid, "child process exited before attaching");
    }
    if (deadline.expired()) {
      return failure(core::kExitInvalid,
                     std::string("no ") + (is_producer ? "consumer" : "producer") +
                         " attached to segment '" + name + "' within the timeout");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  Waiter w;
  w.kind = opt.wait;
  w.timeout_ns = static_cast<std::uint64_t>(opt.timeout_s * 1e9);
  ShmSegment* segp = &seg.value();
  w.alive = [segp, theirs] { return segp->peer_alive(theirs); };

  Report rep;
  if (opt.latency) {
    rep = is_producer ? ping<Queue, P>(qs[0], qs[1], opt, w) : echo<Queue, P>(qs[0], qs[1], opt, w);
  } else {
    rep = is_producer ? produce<Queue, P>(qs[0], opt, w) : consume<Queue, P>(qs[0], opt, w);
  }
  rep.wakeups = 0;
  if constexpr (L::kLockfree) {
    for (auto& q : qs)
      rep.wakeups += q.control().wait.wakeups.load(std::memory_order_relaxed);
  }

  if (child > 0) {
    int status = 0;
    ::waitpid(child, &status, 0);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : core::kExitPeerDied;
    if (rep.exit_code == 0 && code != 0) {
      rep.exit_code = code;
      rep.error = WIFSIGNALED(status)
                      ? "peer process killed by signal " + std::to_string(WTERMSIG(status))
                      : "peer process failed (exit " + std::to_string(code) + ")";
    }
  }
  return rep;
}

template <template <class> class Q, std::size_t P>
Report run_threads(const Options& opt) {
  using Queue = Q<Message<P>>;
  Queue a(opt.capacity), b(opt.capacity);
  Waiter w;
  w.kind = opt.wait;
  w.timeout_ns = static_cast<std::uint64_t>(opt.timeout_s * 1e9);

  Report other;
  std::thread peer([&] {
    if (opt.pin) (void)pin_to(opt.pin->second);
    other = opt.latency ? echo<Queue, P>(a, b, opt, w) : consume<Queue, P>(a, opt, w);
  });
  Report mine;
  if (auto st = opt.pin ? pin_to(opt.pin->first) : Status(); !st) {
    mine = failure(st);
  } else {
    mine = opt.latency ? ping<Queue, P>(a, b, opt, w) : produce<Queue, P>(a, opt, w);
  }
  peer.join();
  Report& shown = opt.latency ? mine : other;  // the side that measured and verified
  if (shown.exit_code == 0 && (opt.latency ? other : mine).exit_code != 0) {
    return opt.latency ? other : mine;
  }
  return shown;
}

template <template <class> class Q, std::size_t P>
Report run_sized(const Options& opt) {
  Report r = opt.threads ? run_threads<Q, P>(opt) : run_processes<Q, P>(opt, side_for(opt));
  r.message_bytes = sizeof(Message<P>);
  r.transport = opt.threads ? "threads" : "processes";
  return r;
}

template <template <class> class Q, std::size_t... Ps>
Report dispatch(const Options& opt, std::index_sequence<Ps...>) {
  Report r = failure(core::kExitInvalid, "unsupported payload size");
  ((opt.payload == kPayloads[Ps] ? (r = run_sized<Q, kPayloads[Ps]>(opt), true) : false) || ...);
  return r;
}

}  // namespace

const std::vector<std::size_t>& supported_payloads() {
  static const std::vector<std::size_t> v(kPayloads.begin(), kPayloads.end());
  return v;
}

Report run(const Options& opt) {
  constexpr auto seq = std::make_index_sequence<kPayloads.size()>{};
  return opt.mode == QueueMode::lockfree ? dispatch<SpscRing>(opt, seq)
                                         : dispatch<MutexQueue>(opt, seq);
}

}  // namespace ringwire::tools
