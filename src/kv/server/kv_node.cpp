// placeholder: filled in by the server/kv_node work
