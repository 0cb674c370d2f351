// etcd's client-visible error texts: etcd clients match on these strings (clientv3's
// rpctypes), so they are kept byte for byte.
#include <grpcpp/support/status_code_enum.h>

#include "ringwire/kv/store/mvcc_store.hpp"

namespace ringwire::kv::store {

namespace {
Error make(grpc::StatusCode code, const char* text) {
  return Error{static_cast<int>(code), text};
}
}  // namespace

Error err_compacted() {
  return make(grpc::OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted");
}
Error err_future_rev() {
  return make(grpc::OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision");
}
Error err_key_not_found() {
  return make(grpc::INVALID_ARGUMENT, "etcdserver: key not found");
}
Error err_empty_key() {
  return make(grpc::INVALID_ARGUMENT, "etcdserver: key is not provided");
}
Error err_duplicate_key() {
  return make(grpc::INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request");
}
Error err_too_many_ops() {
  return make(grpc::INVALID_ARGUMENT, "etcdserver: too many operations in txn request");
}
Error err_lease_not_found() {
  return make(grpc::NOT_FOUND, "etcdserver: requested lease not found");
}
Error err_value_provided() {
  return make(grpc::INVALID_ARGUMENT, "etcdserver: value is provided");
}
Error err_lease_provided() {
  return make(grpc::INVALID_ARGUMENT, "etcdserver: lease is provided");
}

}  // namespace ringwire::kv::store
