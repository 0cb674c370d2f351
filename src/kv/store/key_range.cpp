// placeholder: filled in by the store/key_range work
