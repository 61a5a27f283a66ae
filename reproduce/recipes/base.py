"""The recipe type: a frozen dataclass holding everything that determines a training run.

``Recipe`` gives every family ``full()`` / ``quick()``, ``with_(**changes)``, ``describe()`` (generated from
the fields and their ``doc`` metadata) and ``fingerprint()`` (a hash of every field, recorded in each
report the recipe produced). ``Training`` adds the optimiser fields and ``train_config(seed, device)``;
``datasets(*args)`` builds a family's data once per process through one cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from acda.train import TrainConfig

__all__ = ["Recipe", "Training", "doc", "cached_datasets"]

R = TypeVar("R", bound="Recipe")


def doc(text: str, default: Any = dataclasses.MISSING) -> Any:
    """A recipe field with the words ``describe()`` uses for it."""
    return dataclasses.field(default=default, metadata={"doc": text})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe:
    """Base of the recipe families. ``PRESETS`` maps "full" and "quick" to field values over the defaults."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"full": {}, "quick": {}}
    variant: str = doc("variant", "full")

    @classmethod
    def preset(cls: type[R], variant: str) -> R:
        """The recipe of ``variant`` ("full" or "quick")."""
        if variant not in cls.PRESETS:
            raise ValueError(f"variant must be one of {sorted(cls.PRESETS)}, got {variant!r}")
        return cls(**{**cls.PRESETS[variant], "variant": variant})

    @classmethod
    def full(cls: type[R]) -> R:
        return cls.preset("full")

    @classmethod
    def quick(cls: type[R]) -> R:
        return cls.preset("quick")

    @classmethod
    def of(cls: type[R], quick: bool) -> R:
        """``quick()`` if ``quick`` else ``full()``."""
        return cls.preset("quick" if quick else "full")

    def proxy_tag(self) -> str:
        """How a proxy's rows begin their setting: "proxy" or "proxy (quick)"."""
        return "proxy (quick)" if self.variant == "quick" else "proxy"

    def with_(self: R, **changes: Any) -> R:
        """A copy with ``changes``; a name that is not a field is a ValueError naming it."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"{type(self).__name__} has no fields {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def fields(self) -> dict[str, Any]:
        """Every field and its value (tuples as lists: the JSON form)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def fingerprint(self) -> str:
        """12 hex digits of the SHA-256 of the family's name and every field."""
        text = json.dumps({"recipe": type(self).__name__, **self.fields()}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def describe(self) -> str:
        """"doc value" of every field, in declaration order."""
        return "; ".join(f"{f.metadata.get('doc', f.name)} {_text(getattr(self, f.name))}"
                         for f in dataclasses.fields(self) if f.name != "variant")


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "none"}[value]
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "–".join(_text(v) for v in value) if len(value) == 2 else ", ".join(_text(v) for v in value)
    return str(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Training(Recipe):
    """A recipe that trains with ``acda.train.fit``: the optimiser and schedule fields."""

    optimizer: str = doc("optimizer", "sgd")
    lr: float = doc("learning rate", 0.1)
    momentum: float = doc("momentum (SGD)", 0.9)
    weight_decay: float = doc("weight decay (not on biases/norms)", 5e-4)
    schedule: str = doc("schedule", "cosine")
    warmup_epochs: float = doc("warmup epochs", 0.0)
    grad_clip: float | None = doc("gradient-norm clip", None)
    batch_size: int = doc("batch size", 128)
    drop_last: bool = doc("incomplete last batch dropped", False)
    eval_batch_size: int = doc("evaluation batch size", 256)
    epochs: int = doc("epochs", 1)
    amp: bool = doc("mixed precision", False)

    def train_config(self, seed: int, device: str = "cpu", **changes: Any) -> TrainConfig:
        """The ``TrainConfig`` of one run with ``seed`` (no progress bar unless ``changes`` say so)."""
        names = ("optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "grad_clip",
                 "batch_size", "drop_last", "eval_batch_size", "epochs", "amp")
        return TrainConfig(**{n: getattr(self, n) for n in names}, seed=seed, device=device,
                           **{"progress": False, **changes})


_DATA: dict[tuple, Any] = {}  # datasets built in this process, by builder and arguments


def cached_datasets(build: Callable[..., Any], *args: Any) -> Any:
    """``build(*args)``, built once per process (a recipe family's data from its data fields)."""
    key = (build.__module__, build.__qualname__, args)
    if key not in _DATA:
        _DATA[key] = build(*args)
    return _DATA[key]
