// placeholder: filled in by the store/mvcc_store work
