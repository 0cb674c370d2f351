// placeholder: filled in by the server/cluster_config work
