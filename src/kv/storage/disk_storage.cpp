// placeholder: filled in by the storage/disk_storage work
