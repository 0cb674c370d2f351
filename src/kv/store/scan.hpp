// Walking the keys of a KeyRange in an ordered map (the store's index).
#pragma once

#include "ringwire/kv/store/key_range.hpp"

namespace ringwire::kv::store {

// Calls f(key, value) for every map entry whose key is in `r`, in key order.
template <class Map, class F>
void scan(Map& m, const KeyRange& r, F&& f) {
  if (r.single()) {
    auto it = m.find(r.key);
    if (it != m.end()) f(it->first, it->second);
    return;
  }
  // lower_bound puts us at >= key, so the first key outside the range ends it.
  for (auto it = m.lower_bound(r.key); it != m.end() && r.contains(it->first); ++it) {
    f(it->first, it->second);
  }
}

}  // namespace ringwire::kv::store
