// The list of transports and the small shared helpers of workload.hpp.
#include <algorithm>
#include <cmath>

#include "transport.hpp"
#include "workload.hpp"

namespace ipcb {

const char* kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::baseline:
      return "baseline";
    case Kind::ringwire:
      return "ringwire";
    case Kind::kernel:
      return "kernel";
    case Kind::peer:
      return "peer";
  }
  return "?";
}

std::vector<TransportPtr> all_transports() {
  std::vector<TransportPtr> v;
  v.push_back(make_floor());
  v.push_back(make_channel_spin());
  v.push_back(make_channel_yield());
  v.push_back(make_channel_futex());
  v.push_back(make_pipe());
  v.push_back(make_uds());
  v.push_back(make_posix_mq());
  v.push_back(make_tcp());
  v.push_back(make_boost_mq());
  v.push_back(make_zmq());
  v.push_back(make_iceoryx());
  return v;
}

LatencySummary summarize_rtt(std::vector<std::uint32_t>& rtt, double ns_per_tick) {
  LatencySummary s;
  if (rtt.empty()) return s;
  std::sort(rtt.begin(), rtt.end());
  const std::size_t n = rtt.size();
  // Nearest rank: the smallest sample with at least p of all samples <= it.
  auto at = [&](double p) {
    std::size_t k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(n)));
    k = std::clamp<std::size_t>(k, 1, n);
    return static_cast<double>(rtt[k - 1]) * ns_per_tick / 2.0;
  };
  s.p50 = at(0.50);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.max = static_cast<double>(rtt.back()) * ns_per_tick / 2.0;
  double sum = 0;
  for (std::uint32_t x : rtt)
    sum += x;
  s.mean = sum * ns_per_tick / static_cast<double>(n) / 2.0;
  s.samples = n;
  return s;
}

}  // namespace ipcb
