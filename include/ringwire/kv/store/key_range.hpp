// etcd's key-range convention: range_end empty = the one key; "\0" = every key >= key (and
// key "\0" with range_end "\0" = every key); otherwise the half-open [key, range_end).
#pragma once

#include <string>
#include <string_view>

namespace ringwire::kv::store {

struct KeyRange {
  std::string key;
  std::string range_end;

  bool single() const { return range_end.empty(); }
  bool contains(std::string_view k) const;
};

// The range_end that selects every key starting with `prefix` ("a" -> "b", "a\xff" -> "b",
// all-0xff or empty -> "\0").
std::string prefix_end(std::string_view prefix);

}  // namespace ringwire::kv::store
