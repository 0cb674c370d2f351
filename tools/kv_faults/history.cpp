#include "history.hpp"

#include <istream>
#include <ostream>
#include <stdexcept>

namespace ringwire::tools::kv_faults {

using Json = nlohmann::json;

const char* kind_name(OpKind k) noexcept {
  switch (k) {
    case OpKind::read:
      return "read";
    case OpKind::write:
      return "write";
    case OpKind::cas:
      return "cas";
  }
  return "?";
}

const char* outcome_name(Outcome o) noexcept {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::fail:
      return "fail";
    case Outcome::unknown:
      return "unknown";
  }
  return "?";
}

namespace {

Json opt_json(const std::optional<std::string>& v) {
  return v ? Json(*v) : Json(nullptr);
}

std::optional<std::string> opt_from(const Json& j, const char* field) {
  if (!j.contains(field) || j.at(field).is_null()) return std::nullopt;
  return j.at(field).get<std::string>();
}

}  // namespace

Json to_json(const Op& op) {
  Json j = {{"process", op.process},
            {"node", op.node},
            {"key", op.key},
            {"kind", kind_name(op.kind)},
            {"outcome", outcome_name(op.outcome)},
            {"invoke_ns", op.invoke_ns},
            {"complete_ns", op.complete_ns},
            {"value", opt_json(op.value)}};
  if (op.kind == OpKind::cas) {
    j["expected"] = opt_json(op.expected);
    j["cas_succeeded"] = op.cas_succeeded;
    j["observed"] = opt_json(op.observed);
  }
  if (!op.error.empty()) j["error"] = op.error;
  return j;
}

Op op_from_json(const Json& j) {
  Op op;
  op.process = j.value("process", 0);
  op.node = j.value("node", -1);
  op.key = j.at("key").get<std::string>();
  const std::string kind = j.at("kind").get<std::string>();
  if (kind == "read") {
    op.kind = OpKind::read;
  } else if (kind == "write") {
    op.kind = OpKind::write;
  } else if (kind == "cas") {
    op.kind = OpKind::cas;
  } else {
    throw std::invalid_argument("unknown op kind '" + kind + "'");
  }
  const std::string outcome = j.at("outcome").get<std::string>();
  if (outcome == "ok") {
    op.outcome = Outcome::ok;
  } else if (outcome == "fail") {
    op.outcome = Outcome::fail;
  } else if (outcome == "unknown") {
    op.outcome = Outcome::unknown;
  } else {
    throw std::invalid_argument("unknown outcome '" + outcome + "'");
  }
  op.invoke_ns = j.at("invoke_ns").get<std::int64_t>();
  op.complete_ns = j.at("complete_ns").get<std::int64_t>();
  op.value = opt_from(j, "value");
  op.expected = opt_from(j, "expected");
  op.cas_succeeded = j.value("cas_succeeded", false);
  op.observed = opt_from(j, "observed");
  op.error = j.value("error", std::string());
  return op;
}

void write_history(std::ostream& out, const History& h) {
  for (const Op& op : h)
    out << to_json(op).dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
}

History read_history(std::istream& in) {
  History h;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    h.push_back(op_from_json(Json::parse(line)));
  }
  return h;
}

}  // namespace ringwire::tools::kv_faults
