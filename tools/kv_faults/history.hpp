// The recorded history of a fault run: one Op per client call, with its invoke and complete
// times and what came back. Ops whose outcome the client could not learn (a write that timed
// out after it was sent) are `unknown`: they may or may not have taken effect, and the checker
// treats them so.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ringwire::tools::kv_faults {

enum class OpKind { read, write, cas };
enum class Outcome {
  ok,       // the call answered: it happened, with this result
  fail,     // it certainly did not happen (a read that errored, a write never sent)
  unknown,  // it may or may not have happened (timeout / connection lost after sending)
};

const char* kind_name(OpKind k) noexcept;
const char* outcome_name(Outcome o) noexcept;

struct Op {
  int process = 0;  // client thread (or the final reader)
  int node = -1;    // endpoint it went to (-1: several / unknown)
  std::string key;
  OpKind kind = OpKind::read;
  Outcome outcome = Outcome::ok;
  std::int64_t invoke_ns = 0;    // since the run started (steady clock)
  std::int64_t complete_ns = 0;  // when the answer (or the error) came back
  // read: the value read (nullopt: the key was absent).
  // write: the value written.  cas: the new value.
  std::optional<std::string> value;
  // cas only: the value compared against (nullopt: expect the key absent).
  std::optional<std::string> expected;
  // cas with outcome ok: whether the compare held; when it did not, `observed` is the value
  // the server returned (nullopt: absent).
  bool cas_succeeded = false;
  std::optional<std::string> observed;
  std::string error;  // the client's error text for fail / unknown
};

using History = std::vector<Op>;

nlohmann::json to_json(const Op& op);
Op op_from_json(const nlohmann::json& j);  // throws nlohmann::json::exception on bad input

// One JSON object per line (JSON Lines), the format `kv_faults --check FILE` reads.
void write_history(std::ostream& out, const History& h);
History read_history(std::istream& in);  // throws on malformed lines

}  // namespace ringwire::tools::kv_faults
