// placeholder: filled in by the server/peer_transport work
