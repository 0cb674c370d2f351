// Single-thread cost of one push + one pop on an uncontended queue (Google
// Benchmark). No second core is involved, so this is the instruction-level
// cost of the fast path only; cross-core numbers come from ringwire_bench.
#include <benchmark/benchmark.h>

#include <memory>

#include "harness/adapters.hpp"

namespace {

using namespace rwbench;

template <class Q, class M>
void push_pop(benchmark::State& st) {
  auto q = std::make_unique<Q>();
  M m{};
  std::uint64_t i = 0;
  for (auto _ : st) {
    make_msg(m, i++);
    if (!q->push(m)) st.SkipWithError("push failed");
    if (!q->pop(m)) st.SkipWithError("pop failed");
    benchmark::DoNotOptimize(m);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()));
}

template <class Q, class M>
void push_pop_batch(benchmark::State& st) {
  auto q = std::make_unique<Q>();
  constexpr std::size_t kB = 64;
  M buf[kB]{};
  std::uint64_t i = 0;
  for (auto _ : st) {
    for (auto& m : buf)
      make_msg(m, i++);
    if (q->push_n(buf, kB) != kB) st.SkipWithError("push_n short");
    if (q->pop_n(buf, kB) != kB) st.SkipWithError("pop_n short");
    benchmark::DoNotOptimize(buf);
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations() * kB));
}

}  // namespace

BENCHMARK(push_pop<RingQ<Msg8>, Msg8>)->Name("push_pop/8B/SpscRing");
BENCHMARK(push_pop<MutexQ<Msg8>, Msg8>)->Name("push_pop/8B/MutexQueue");
BENCHMARK(push_pop<RingQ<Msg64>, Msg64>)->Name("push_pop/64B/SpscRing");
BENCHMARK(push_pop<MutexQ<Msg64>, Msg64>)->Name("push_pop/64B/MutexQueue");
BENCHMARK(push_pop_batch<RingQ<Msg8>, Msg8>)->Name("push_pop_batch64/8B/SpscRing");
BENCHMARK(push_pop_batch<MutexQ<Msg8>, Msg8>)->Name("push_pop_batch64/8B/MutexQueue");
#if RWBENCH_HAVE_BOOST
BENCHMARK(push_pop<BoostQ<Msg8>, Msg8>)->Name("push_pop/8B/boost_spsc_queue");
BENCHMARK(push_pop<BoostQ<Msg64>, Msg64>)->Name("push_pop/64B/boost_spsc_queue");
BENCHMARK(push_pop_batch<BoostQ<Msg8>, Msg8>)->Name("push_pop_batch64/8B/boost_spsc_queue");
#endif
#if RWBENCH_HAVE_RWQ
BENCHMARK(push_pop<RwqQ<Msg8>, Msg8>)->Name("push_pop/8B/moodycamel_rwq");
BENCHMARK(push_pop<RwqQ<Msg64>, Msg64>)->Name("push_pop/64B/moodycamel_rwq");
#endif
#if RWBENCH_HAVE_ATOMIC_QUEUE
BENCHMARK(push_pop<AqQ<Msg8>, Msg8>)->Name("push_pop/8B/atomic_queue");
BENCHMARK(push_pop<AqQ<Msg64>, Msg64>)->Name("push_pop/64B/atomic_queue");
#endif

BENCHMARK_MAIN();
