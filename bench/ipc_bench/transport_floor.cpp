// `floor`: the two worker processes ping-pong one atomic on one cache line of
// the MAP_SHARED block. Two cache-line hand-overs per round trip: no
// transport can beat it. Latency only.
#include "transport.hpp"
#include "workload.hpp"

namespace ipcb {
namespace {

class Floor final : public Transport {
 public:
  const char* name() const override { return "floor"; }
  Kind kind() const override { return Kind::baseline; }
  std::string description() const override {
    return "one std::atomic<uint64_t> in a MAP_SHARED page, ping-ponged (store + spin with "
           "pause)";
  }
  std::string unsupported(Workload w, std::size_t) const override {
    return w == Workload::throughput ? "latency only (one word, no messages)" : "";
  }

  bool side_a(const CellSpec& c, SharedBlock& s) override {
    Spin sp(s, c.deadline_ns);
    std::uint64_t fi = 0;
    if (!meet(s, true, c.deadline_ns)) return false;
    for (std::uint32_t i = 0; i < c.warmup; ++i)
      if (!floor_a(s, fi, sp)) return false;
    std::vector<std::uint32_t> f;
    f.reserve(c.count);
    const TickClock clock;
    std::uint64_t t = ticks();
    for (std::uint64_t i = 0; i < c.count; ++i) {
      if (!floor_a(s, fi, sp)) {
        s.a_err.set("floor ping-pong timed out");
        return false;
      }
      const std::uint64_t t2 = ticks();
      f.push_back(clamp32(t2 - t));
      t = t2;
    }
    s.lat = summarize_rtt(f, clock.ns_per_tick());
    s.floor_lat = s.lat;
    return true;
  }
  bool side_b(const CellSpec& c, SharedBlock& s) override {
    Spin sp(s, c.deadline_ns);
    std::uint64_t fi = 0;
    if (!meet(s, false, c.deadline_ns)) return false;
    for (std::uint64_t i = 0; i < c.warmup + c.count; ++i) {
      if (!floor_b(s, fi, sp)) {
        s.b_err.set("floor ping-pong timed out");
        return false;
      }
    }
    s.received = c.count;
    return true;
  }
};

}  // namespace

TransportPtr make_floor() {
  return std::make_unique<Floor>();
}

}  // namespace ipcb
