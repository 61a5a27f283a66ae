"""The two layers of Figure 6 at the same initial scale, their training loop and the least-squares Conv."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from acda import ACDAConv2d
from acda.data.toy import PatternMap

from ..recipes.toymap import KERNEL, RADIUS, ToyMap

__all__ = ["TrainLog", "build_layers", "train", "least_squares_conv"]


@dataclass
class TrainLog:
    """Steps taken, whether the criterion was met, and the loss after each step."""

    steps: int
    converged: bool
    losses: list[float] = field(repr=False)


def build_layers(image: torch.Tensor, num_atoms: int, device: torch.device) -> tuple[nn.Conv2d, ACDAConv2d]:
    """Conv and ACDA with default init, biases 0, ACDA's A rescaled to the Conv's output std."""
    conv = nn.Conv2d(1, 1, KERNEL, padding=RADIUS, device=device)
    # backend "reference" (unfold + einsum): the fastest here for one channel on one CPU thread
    acda = ACDAConv2d(1, 1, KERNEL, padding=RADIUS, num_atoms=num_atoms, generator="paper", backend="reference",
                      device=device)
    with torch.no_grad():
        conv.bias.zero_()
        acda.bias.zero_()
        acda.coef.mul_(conv(image).std() / acda(image).std())
    return conv, acda


def train(layer: nn.Module, data: PatternMap, cfg: ToyMap, desc: str, progress: bool = True) -> TrainLog:
    """SGD on the MSE until the relative loss change over ``cfg.window`` steps is below ``cfg.tol``.

    A plain full-batch loop: the one image is the whole training set, so there are no epochs, loaders or
    checkpoints for ``acda.train.fit`` to manage. At every ``window``-th step (and the last) the loss is
    evaluated there, exactly where the rule needs it. ``losses[t]``: the loss after t updates.
    """
    log = TrainLog(cfg.max_steps, False, [])
    optimizer = torch.optim.SGD(layer.parameters(), lr=cfg.lr, momentum=cfg.momentum)

    def record(step: int, value: float) -> None:
        if not math.isfinite(value):
            raise RuntimeError(f"{desc}: loss diverged to {value} at step {step} (lr={cfg.lr}, "
                               f"momentum={cfg.momentum}); lower --momentum")
        log.losses.append(value)

    def check(step: int) -> bool:
        """The loss after ``step`` updates; True when the stopping rule is met."""
        with torch.no_grad():
            output = layer(data.image)
        record(step, F.mse_loss(output, data.target).item())
        if step % cfg.window:
            return False
        value, before = log.losses[step], log.losses[step - cfg.window] if step else math.nan
        if step and abs(before - value) < cfg.tol * before:
            log.steps, log.converged = step, True
        return log.converged

    if check(0):
        return log
    for step in tqdm(range(1, cfg.max_steps + 1), desc=desc, leave=False, disable=not progress):
        loss = F.mse_loss(layer(data.image), data.target)
        if len(log.losses) == step - 1:  # the loss after step − 1 updates, unless a check recorded it
            record(step - 1, loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step % cfg.window == 0 or step == cfg.max_steps) and check(step):
            break
    return log


def least_squares_conv(image: torch.Tensor, target: torch.Tensor) -> nn.Conv2d:
    """The 7×7 filter and bias minimising the MSE exactly (float64 least squares over all pixels)."""
    patches = F.unfold(image.double(), KERNEL, padding=RADIUS)[0].T  # (H·W, 49)
    design = torch.cat([patches, torch.ones(len(patches), 1, dtype=patches.dtype)], dim=1)
    solution = torch.linalg.lstsq(design.cpu(), target.double().reshape(-1, 1).cpu()).solution[:, 0]
    conv = nn.Conv2d(1, 1, KERNEL, padding=RADIUS, device=image.device)
    with torch.no_grad():
        conv.weight.copy_(solution[:-1].view(1, 1, KERNEL, KERNEL))
        conv.bias.copy_(solution[-1:])
    return conv
