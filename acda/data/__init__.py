"""Dataset loaders for the real on-disk formats, and synthetic generators (toy tasks, proxies)."""
from .layout import DatasetLayoutError
from .tensors import TensorImageDataset, TensorPairDataset

__all__ = ["DatasetLayoutError", "TensorImageDataset", "TensorPairDataset"]
