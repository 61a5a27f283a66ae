"""Dataset loaders for the real on-disk formats, and synthetic generators (toy tasks, proxies)."""
from .crowd import CrowdDataset, density_map, shanghaitech_a, sum_pool, ucf_qnrf
from .crowd_proxy import CrowdProxy, crowd_proxy
from .layout import DatasetLayoutError
from .restoration import PairedImageDataset, SIDDValidationBlocks, realsr, sidd
from .restoration_proxy import RESTORATION_PHOTOS, RestorationProxy, restoration_proxy
from .tensors import TensorImageDataset, TensorPairDataset

__all__ = ["DatasetLayoutError", "TensorImageDataset", "TensorPairDataset",
           "CrowdDataset", "density_map", "shanghaitech_a", "sum_pool", "ucf_qnrf",
           "CrowdProxy", "crowd_proxy",
           "PairedImageDataset", "SIDDValidationBlocks", "realsr", "sidd",
           "RESTORATION_PHOTOS", "RestorationProxy", "restoration_proxy"]
