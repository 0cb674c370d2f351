// placeholder: filled in by the storage/wal work
