// placeholder: filled in by the server/metrics work
