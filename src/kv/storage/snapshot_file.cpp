// placeholder: filled in by the storage/snapshot_file work
