"""Dataset loaders for the real on-disk formats, and synthetic generators (toy tasks, proxies)."""
from .layout import DatasetLayoutError
from .tensors import TensorImageDataset, TensorPairDataset

__all__ = ["DatasetLayoutError", "TensorImageDataset", "TensorPairDataset"]
from .crowd import CrowdDataset, density_map, shanghaitech_a, sum_pool, ucf_qnrf
from .crowd_proxy import CrowdProxy, crowd_proxy

__all__ += ["CrowdDataset", "density_map", "shanghaitech_a", "sum_pool", "ucf_qnrf"]
__all__ += ["CrowdProxy", "crowd_proxy"]
from .restoration import PairedImageDataset, SIDDValidationBlocks, realsr, sidd

__all__ += ["PairedImageDataset", "SIDDValidationBlocks", "realsr", "sidd"]
