"""Training recipes shared by several reproducers (so that no reproducer imports another).

- ``CIFAR_RECIPE``: Table 1's recipe for LeNet and LeNet + ACDA (the paper prints none).
- ``PROXY``: the real-image proxy (``acda.data.proxy``: patches of scikit-image's photographs) that
  stands in for CIFAR in Table 1 and for ImageNet in Appendix A.5, in its full and quick (CI) sizes.
"""
from __future__ import annotations

from acda.data.proxy import PROXY_IMAGES, texture_proxy
from acda.train import TrainConfig

__all__ = ["CIFAR_RECIPE", "PROXY", "proxy_config", "proxy_datasets", "proxy_setting"]

# One recipe for both models. Gradient-norm clipping is part of it because LeNet + ACDA with the
# paper's generator (no normalisation of α) diverges without it at this learning rate (Table 1's findings).
CIFAR_RECIPE = TrainConfig(epochs=60, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine",
                           warmup_epochs=1, batch_size=128, grad_clip=1.0, progress=True)
# The proxy uses the same recipe on a smaller dataset (so a smaller batch and fewer epochs).
# Quick (the CI configuration): 10 seeds of 16×16 patches (LeNet's smallest input), so that each
# seed is cheap and the cross-machine regression can see a change of a few points.
PROXY = {
    "full": {"per_class_train": 100, "per_class_test": 50, "epochs": 15, "batch_size": 32, "seeds": 3, "patch": 32},
    "quick": {"per_class_train": 60, "per_class_test": 100, "epochs": 8, "batch_size": 16, "seeds": 10, "patch": 16},
}


def proxy_config(quick: bool) -> dict[str, int]:
    """A copy of ``PROXY["quick"]`` or ``PROXY["full"]``."""
    return dict(PROXY["quick" if quick else "full"])


def proxy_setting(quick: bool) -> str:
    """The ``setting`` column of proxy rows: which patches, how many classes and images."""
    p = PROXY["quick" if quick else "full"]
    return (f"proxy{' (quick)' if quick else ''}: {p['patch']}×{p['patch']} skimage patches, {len(PROXY_IMAGES)} "
            f"classes, {p['per_class_train']}/{p['per_class_test']} per class")


_DATA: dict[tuple, tuple] = {}  # proxy datasets of this process, by configuration


def proxy_datasets(p: dict[str, int]):
    """(train, test) texture proxy of the configuration ``p`` (``proxy_config``), built once per process."""
    key = (p["per_class_train"], p["per_class_test"], p["patch"])
    if key not in _DATA:
        _DATA[key] = texture_proxy(p["per_class_train"], p["per_class_test"], patch=p["patch"])
    return _DATA[key]
