// Linearizability of a key-value history against the register-per-key model (read, write,
// compare-and-swap), with ops of unknown outcome.
//
// Linearizability is local (Herlihy & Wing): the history is linearizable iff each key's
// sub-history is, so keys are checked one at a time. Per key, a Wing & Gong / Lowe search
// (as in Knossos and Porcupine): linearize, one at a time, an op that may go next (no
// unlinearized op finished before it was invoked) and whose result the register allows;
// backtrack on a dead end; memoize (linearized set, register value) so that no configuration
// is explored twice. See docs/reliability.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "history.hpp"

namespace ringwire::tools::kv_faults {

enum class Verdict {
  linearizable,
  not_linearizable,
  unknown,  // the search ran out of its budget: no claim either way
};

const char* verdict_name(Verdict v) noexcept;

struct CheckOptions {
  // Search steps (ops tried) per key before giving up with Verdict::unknown.
  std::uint64_t max_steps_per_key = 50'000'000;
  // Look for the smallest non-linearizable window around the failure (costs a few searches).
  bool find_window = true;
};

struct KeyReport {
  std::string key;
  Verdict verdict = Verdict::linearizable;
  std::size_t ops = 0;          // ops of this key in the history
  std::size_t checked_ops = 0;  // after dropping failed ops, unknown reads, unobserved writes
  std::size_t unknown_kept =
      0;  // unknown writes/CAS kept (their value was observed, or not unique)
  std::uint64_t steps = 0;
  std::uint64_t memo_entries = 0;
  // not_linearizable: the op (index into the input history) that no search could linearize
  // after its predecessors, and the smallest window of ops (indices into the input history)
  // ending with it that is not linearizable on its own from any initial value (or the whole
  // prefix from the initial value when no smaller window is).
  std::size_t stuck_op = 0;
  std::vector<std::size_t> window;
  bool window_from_any_value = false;
};

struct CheckReport {
  Verdict verdict = Verdict::linearizable;  // not_linearizable > unknown > linearizable
  std::vector<KeyReport> keys;
};

// Values written must be unique per key for the pruning of unknown ops (docs); when they are
// not, unknown ops are kept as "may take effect at any time after invoke" (slower, still sound).
// Every key starts absent.
// Runs on its own thread with a large stack (the search is recursive).
CheckReport check_history(const History& h, const CheckOptions& o = {});
// The same on the caller's thread.
CheckReport check_history_here(const History& h, const CheckOptions& o = {});

}  // namespace ringwire::tools::kv_faults
