// placeholder: filled in by the server/watch_hub work
