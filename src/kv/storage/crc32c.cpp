// placeholder: filled in by the storage/crc32c work
