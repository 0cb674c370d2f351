// Where a ring's bytes live and how they are laid out: a control block
// followed by the slot array. Shared by SpscRing and MutexQueue so both can be
// placed on the heap or inside a shared-memory segment with the same geometry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "ringwire/core/cache_line.hpp"
#include "ringwire/core/status.hpp"

namespace ringwire::queue {

// Upper bound that keeps every `capacity * sizeof(T)` product far from
// overflow and every index difference meaningful.
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 32;

constexpr bool is_power_of_two(std::uint64_t v) noexcept {
  return v != 0 && (v & (v - 1)) == 0;
}

constexpr std::size_t align_up(std::size_t v, std::size_t a) noexcept {
  return (v + a - 1) / a * a;
}

// Offset of slot 0 from the start of the ring: past the control block and on
// its own cache-line pair, so the first slots never share a line with indices.
template <class Control, class T>
constexpr std::size_t slots_offset() noexcept {
  constexpr std::size_t a =
      alignof(T) > core::kFalseSharingRange ? alignof(T) : core::kFalseSharingRange;
  return align_up(sizeof(Control), a);
}

template <class Control, class T>
constexpr std::size_t ring_bytes(std::uint64_t capacity) noexcept {
  return slots_offset<Control, T>() + static_cast<std::size_t>(capacity) * sizeof(T);
}

inline core::Status check_capacity(std::uint64_t capacity) {
  if (!is_power_of_two(capacity) || capacity > kMaxCapacity) {
    return {core::Errc::invalid_argument,
            "capacity must be a power of two between 1 and 2^32, got " + std::to_string(capacity)};
  }
  return {};
}

// Heap memory for an in-process ring, aligned like a segment mapping would be.
class OwnedBytes {
 public:
  OwnedBytes() = default;
  explicit OwnedBytes(std::size_t n)
      : p_(::operator new (n, std::align_val_t{core::kFalseSharingRange})), n_(n) {}
  OwnedBytes(OwnedBytes&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  OwnedBytes& operator=(OwnedBytes&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~OwnedBytes() { reset(); }
  void* get() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }

 private:
  void reset() noexcept {
    if (p_) ::operator delete (p_, std::align_val_t{core::kFalseSharingRange});
    p_ = nullptr;
  }
  void* p_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace ringwire::queue
