// placeholder: filled in by the server/raft_codec work
