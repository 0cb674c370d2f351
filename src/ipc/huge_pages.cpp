#include "huge_pages.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace ringwire::ipc::detail {

bool advise_huge_pages(void* base, std::size_t len) noexcept {
  constexpr std::uintptr_t kHuge = 2u << 20;
  const auto b = reinterpret_cast<std::uintptr_t>(base);
  const std::uintptr_t lo = (b + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t hi = (b + len) & ~(kHuge - 1);
  return hi > lo && ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE) == 0;
}

std::size_t huge_mapped_kb(const void* addr) {
  std::ifstream f("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = a >= lo && a < hi;  // a new mapping's header line
      continue;
    }
    if (!inside) continue;
    std::size_t kb = 0;
    if (std::sscanf(line.c_str(), "ShmemPmdMapped: %zu kB", &kb) == 1 ||
        std::sscanf(line.c_str(), "FilePmdMapped: %zu kB", &kb) == 1) {
      if (kb > 0) return kb;
    }
  }
  return 0;
}

}  // namespace ringwire::ipc::detail
