"""Recipes (reproduce/recipes): typed, described from their fields, fingerprinted (``python -m reproduce verify``
checks that every committed report records the fingerprints its reproducer's recipes have now)."""
from __future__ import annotations

import dataclasses

import pytest

from reproduce.engine.regression import recipe_problems
from reproduce.engine.report import recipe_record
from reproduce.recipes import (
    Cifar,
    ClassificationProxy,
    CrowdProxy,
    ImageNet,
    RestorationProxy,
    RestorationReal,
    ToyMap,
)
from reproduce.recipes.crowd import Crowd

FAMILIES = (Cifar, ClassificationProxy, ImageNet, Crowd, CrowdProxy, RestorationReal, RestorationProxy, ToyMap)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
def test_presets_describe_and_fingerprint(family):
    full, quick = family.full(), family.quick()
    assert full.variant == "full" and quick.variant == "quick"
    assert full.fingerprint() != quick.fingerprint() and full.fingerprint() == family.full().fingerprint()
    text = full.describe()
    for f in dataclasses.fields(full):
        if f.name != "variant":
            assert f.metadata["doc"] in text, f.name
    for f in dataclasses.fields(full):  # every field is in the fingerprint
        value = getattr(full, f.name)
        changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v * 2 + 1, str: lambda v: v + "x",
                   tuple: lambda v: v[:-1] if len(v) > 2 else (v[0], v[1] + 1)}
        if value is None or f.name == "variant":
            continue
        try:
            other = full.with_(**{f.name: changed[type(value)](value)})
        except ValueError:  # a validated field (ToyMap): another legal value
            continue
        assert other.fingerprint() != full.fingerprint(), f.name


def test_with_rejects_unknown_fields_and_variants():
    with pytest.raises(ValueError, match="no fields.*'lr_typo'"):
        CrowdProxy.quick().with_(lr_typo=1.0)
    with pytest.raises(ValueError, match="variant must be one of"):
        CrowdProxy.preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        CrowdProxy.quick().lr = 1.0


def test_train_config_carries_every_training_field():
    recipe = RestorationProxy.quick()
    config = recipe.train_config(3, "cpu", num_workers=2)
    for name in ("optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "grad_clip",
                 "batch_size", "drop_last", "eval_batch_size", "epochs", "amp"):
        assert getattr(config, name) == getattr(recipe, name), name
    assert (config.seed, config.num_workers, config.progress) == (3, 2, False)
    assert ImageNet.full().with_(label_smoothing=0.1).train_config(0).label_smoothing == 0.1


def test_recipe_problems_names_the_changed_field():
    old = {"proxy": recipe_record(RestorationProxy.quick())}
    new = {"proxy": recipe_record(RestorationProxy.quick().with_(lr=8e-3))}
    (problem,) = recipe_problems(new, old)
    assert "changed" in problem and "fields lr" in problem
    assert recipe_problems(old, old) == []
    assert recipe_problems({}, old) == ["recipe 'proxy' is not in this run"]
