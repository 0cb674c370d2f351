#include "ringwire/kv/store/key_range.hpp"

namespace ringwire::kv::store {

bool KeyRange::contains(std::string_view k) const {
  if (single()) return k == key;
  if (k < std::string_view(key)) return false;
  // "\0" as range_end is etcd's "no upper bound".
  if (range_end == std::string_view("\0", 1)) return true;
  return k < std::string_view(range_end);
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  // Drop trailing 0xff bytes (they cannot be incremented), then bump the last byte.
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff)
    end.pop_back();
  if (end.empty()) return std::string("\0", 1);
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

}  // namespace ringwire::kv::store
