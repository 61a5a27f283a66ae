"""The crowd-counting proxy recipe shared by Table 3 and Figure 7 (paper §4.2): the models as trained
(``build``, ``WholeImage``), the proxy configurations (``PROXY``: LFW faces pasted under a perspective
scale gradient onto scikit-image photographs, ``acda.data.crowd_proxy``) and one seeded training run
(``proxy_train_one``). Not a reproducer itself: docs/reproductions.md (reproduce.table3) explains the recipe
and why (× 100 density maps, the authors' generator); ``reproduce.table3`` and ``reproduce.figure7``
report on it.
"""
from __future__ import annotations

import torch
from torch import nn

from acda.data.crowd import pad_to_multiple
from acda.data.crowd_proxy import crowd_proxy
from acda.models import get_model
from acda.models.crowd import CrowdCounter
from acda.train import DensityCounting, TrainConfig, fit

from . import base

__all__ = ["ACDA_MODELS", "DENSITY_SCALE", "GENERATOR", "PROXY", "PROXY_MODELS", "WholeImage", "build",
           "proxy_config", "proxy_datasets", "proxy_recipe", "proxy_setting", "proxy_train_one"]

ACDA_MODELS = ("crowd_adresnet_s", "crowd_adresnet_m")
DENSITY_SCALE = 100.0  # the network learns 100 × the density map (docs/reproductions.md, reproduce.table3)
GENERATOR = "official"  # atom generator of the trained Ad-ResNets (docs/reproductions.md, reproduce.table3)


def build(slug: str, *, width_mult: float = 1.0, generator: str = "paper") -> CrowdCounter:
    """The registered crowd model ``slug`` (the ACDA models with ``generator``)."""
    kwargs = {"width_mult": width_mult}
    if slug in ACDA_MODELS:
        kwargs["generator"] = generator
    return get_model(slug, **kwargs)


class WholeImage(nn.Module):
    """A ``CrowdCounter`` on images of any size: zero-pads the input (bottom/right) to a multiple of the
    backbone's stride and crops the density map back to ⌈H/s⌉ × ⌈W/s⌉ (s = output stride), so the
    count is over the image only. No parameters of its own."""

    def __init__(self, model: CrowdCounter) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, _ = pad_to_multiple(x, self.model.stride)
        s = self.model.output_stride
        return self.model(x)[..., :-(-h // s), :-(-w // s)]


PROXY_MODELS = ("crowd_baseline", "crowd_adresnet_s")
# full: the default (≈ 15 min on 2 cores); quick: the CI configuration (≈ 1 min on 2 cores), 10 seeds so that
# the cross-machine regression can see a change. Face sizes and counts scale with the image side.
PROXY = {
    "full": {"size": 128, "train": 240, "test": 60, "epochs": 20, "seeds": 5, "width_mult": 0.125,
             "count": (10, 60), "scale": (6.0, 24.0), "batch_size": 4, "lr": 3e-3, "density_scale": DENSITY_SCALE,
             "weight_decay": 1e-4, "schedule": "cosine", "warmup_epochs": 1.0, "grad_clip": 1.0,
             "generator": GENERATOR},
    "quick": {"size": 64, "train": 128, "test": 32, "epochs": 6, "seeds": 10, "width_mult": 0.125,
              "count": (5, 30), "scale": (3.0, 12.0), "batch_size": 4, "lr": 3e-3, "density_scale": DENSITY_SCALE,
              "weight_decay": 1e-4, "schedule": "cosine", "warmup_epochs": 1.0, "grad_clip": 1.0,
              "generator": GENERATOR},
}


def proxy_config(quick: bool, **overrides) -> dict:
    """A copy of ``PROXY["quick"]`` or ``PROXY["full"]`` with ``overrides``."""
    return base.preset(PROXY, quick, **overrides)


def proxy_setting(cfg: dict, quick: bool) -> str:
    n = cfg["size"]
    return (f"proxy{' (quick)' if quick else ''}: lfw faces on skimage photos, {n}×{n}, {cfg['train']}/"
            f"{cfg['test']} images, width ×{cfg['width_mult']:g}")


def proxy_datasets(cfg: dict):
    kwargs = {"size": cfg["size"], "seed": 0, "count": cfg["count"], "scale": cfg["scale"]}
    return crowd_proxy("train", cfg["train"], **kwargs), crowd_proxy("test", cfg["test"], **kwargs)


def proxy_recipe(cfg: dict) -> str:
    schedule = (f"{cfg['schedule']}" + (f" after {cfg['warmup_epochs']:g} warmup epoch(s)" if cfg["warmup_epochs"] else "")
                + (f", gradient norm clipped at {cfg['grad_clip']:g}" if cfg["grad_clip"] else ""))
    return (f"Adam lr {cfg['lr']:g} ({schedule}), L2 weight decay {cfg['weight_decay']:g} (not on biases/norms), batches of "
            f"{cfg['batch_size']} whole {cfg['size']}×{cfg['size']} images + flips, {cfg['epochs']} epochs, "
            f"pixel-wise MSE on {cfg['density_scale']:g} × the σ = 4 px density map (the count is the output's sum "
            f"/ {cfg['density_scale']:g}), width × {cfg['width_mult']:g}, {cfg['generator']} generator, from scratch; "
            f"faces per image uniform in {cfg['count'][0]}–{cfg['count'][1]}, side {cfg['scale'][0]:g}→"
            f"{cfg['scale'][1]:g} px top→bottom")


_DATA: dict[str, tuple] = {}  # proxy datasets of this process, by configuration


def proxy_train_one(slug: str, seed: int, cfg: dict, device: str = "cpu", return_state: bool = False):
    """Train ``slug`` on the proxy of ``cfg`` with ``seed``; the last epoch's metrics (and, with
    ``return_state``, the trained ``CrowdCounter``'s state dict on the CPU). One CPU thread (``base.run_jobs``
    workers), so the numbers do not depend on the number of jobs."""
    key = repr(sorted(cfg.items()))
    if key not in _DATA:
        _DATA[key] = proxy_datasets(cfg)
    train_set, test_set = _DATA[key]
    config = TrainConfig(epochs=cfg["epochs"], optimizer="adam", lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                         schedule=cfg["schedule"], warmup_epochs=cfg["warmup_epochs"], grad_clip=cfg["grad_clip"],
                         batch_size=cfg["batch_size"], drop_last=True, eval_batch_size=1,
                         seed=seed, device=device, progress=False)
    with base.threads(1):
        torch.manual_seed(seed)
        model = build(slug, width_mult=cfg["width_mult"], generator=cfg["generator"])
        metrics = fit(WholeImage(model), train_set, test_set, config,
                      task=DensityCounting(density_scale=cfg["density_scale"]))
    if not return_state:
        return metrics
    return metrics, {k: v.detach().cpu() for k, v in model.state_dict().items()}
