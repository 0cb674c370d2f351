// An ApplyResult that carries only an error (the store is left unchanged).
#pragma once

#include <cstdint>

#include "ringwire/kv/store/mvcc_store.hpp"

namespace ringwire::kv::store {

inline pb::ApplyResult failed(const Error& e) {
  pb::ApplyResult res;
  res.set_grpc_code(static_cast<std::uint32_t>(e.grpc_code));
  res.set_error(e.message);
  return res;
}

}  // namespace ringwire::kv::store
