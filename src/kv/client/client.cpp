// placeholder: filled in by the client/client work
