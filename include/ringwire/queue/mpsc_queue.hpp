// MpscQueue<T>: the non-intrusive convenience form of MpscNodeQueue. Values
// are copied into nodes taken from a fixed pool, so the hot path never
// allocates; the pool bounds the queue.
//
// Progress: the node queue's push is wait-free, but taking a node from the
// pool is a CAS loop, so try_push here is lock-free. Pops keep the node
// queue's two flavours.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include "ringwire/queue/index_free_list.hpp"
#include "ringwire/queue/mpsc_node_queue.hpp"

namespace ringwire::queue {

template <class T>
class MpscQueue {
  static_assert(std::is_nothrow_copy_assignable_v<T> && std::is_default_constructible_v<T>);

 public:
  explicit MpscQueue(std::uint32_t capacity)
      : nodes_(new Node[capacity]), free_(capacity), capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("MpscQueue capacity must be at least 1");
  }

  std::uint32_t capacity() const noexcept { return capacity_; }

  // Any thread. False when all `capacity` nodes are in the queue.
  bool try_push(const T& value) noexcept {
    auto idx = free_.pop();
    if (!idx) return false;
    Node& n = nodes_[*idx];
    n.value = value;
    queue_.push(&n.hook);
    return true;
  }

  // Consumer only. busy = a push is half done; the item will appear shortly.
  PopStatus try_pop(T& out) noexcept {
    PopResult r = queue_.try_pop();
    if (r.status == PopStatus::ok) take(r.node, out);
    return r.status;
  }

  // Consumer only. False only when empty in the linearizable sense.
  bool pop_linearizable(T& out) noexcept {
    MpscHook* h = queue_.pop_linearizable();
    if (h == nullptr) return false;
    take(h, out);
    return true;
  }

 private:
  struct Node {
    MpscHook hook;
    T value{};
  };

  void take(MpscHook* h, T& out) noexcept {
    static_assert(std::is_standard_layout_v<Node>, "T must be standard-layout");
    Node* n = reinterpret_cast<Node*>(h);  // hook is Node's first member
    out = n->value;
    free_.push(static_cast<std::uint32_t>(n - nodes_.get()));
  }

  std::unique_ptr<Node[]> nodes_;
  IndexFreeList free_;
  MpscNodeQueue queue_;
  std::uint32_t capacity_;
};

}  // namespace ringwire::queue

namespace ringwire {
using queue::MpscQueue;
}
