// placeholder: filled in by the server/services work
