"""Dataset loaders for the real on-disk formats, and synthetic generators (toy tasks, proxies)."""
