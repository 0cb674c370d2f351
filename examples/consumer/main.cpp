// Uses the installed headers and library: an SpscRing in a fresh segment,
// a round trip of a few values, and the segment gone afterwards.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "ringwire/queue/spsc_ring.hpp"
#include "ringwire/shm/shm_segment.hpp"

int main() {
  using Ring = ringwire::SpscRing<long>;
  ringwire::shm::SegmentSpec spec;
  spec.kind = ringwire::shm::SegmentKind::spsc_ring;
  spec.layout_hash = ringwire::shm::layout_fingerprint(sizeof(long), 16);
  spec.capacity = 16;
  spec.element_size = sizeof(long);
  spec.payload_size = Ring::bytes_for(16);
  const std::string name = "example." + std::to_string(getpid());
  auto seg = ringwire::ShmSegment::create(name, spec);
  if (!seg) {
    std::fprintf(stderr, "create: %s\n", seg.status().to_string().c_str());
    return 2;
  }
  auto ring = Ring::create_in(seg->payload(), seg->payload_size(), 16);
  if (!ring) return 2;
  seg->mark_ready();
  long sum = 0, v = 0;
  for (long i = 1; i <= 10; ++i)
    ring->try_push(i);
  while (ring->try_pop(v))
    sum += v;
  std::printf("example consumer: sum of 1..10 through the ring = %ld\n", sum);
  return sum == 55 ? 0 : 3;
}
