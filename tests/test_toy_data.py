"""The synthetic multi-scale pattern maps of the Figure 6 toy experiment (acda/data/toy.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linprog

from acda.data.toy import PATTERN_SIZES, make_pattern_scene, pattern_bank


def test_pattern_bank_has_one_distinct_binary_shape_per_scale():
    bank = pattern_bank()
    assert sorted(bank) == list(PATTERN_SIZES)
    padded = []
    for k, p in bank.items():
        assert p.shape == (k, k) and set(p.unique().tolist()) == {0.0, 1.0}
        assert p[k // 2, k // 2] == 1  # every shape marks its centre
        assert torch.equal(p, p.flip(0)) and torch.equal(p, p.T)  # symmetric: the centre is well defined
        pad = (7 - k) // 2
        padded.append(F.pad(p, (pad, pad, pad, pad)))
    for i in range(3):
        for j in range(i):
            assert not torch.equal(padded[i], padded[j])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_scene_layout(seed):
    scene = make_pattern_scene(seed, noise_std=0.0, amplitude=2.0)
    data = scene.render(0)
    assert data.image.shape == data.target.shape == (1, 1, 100, 100)
    assert len(data.centres) == 25 and int(data.target.sum()) == 25
    assert torch.all(data.target[0, 0, data.centres[:, 0], data.centres[:, 1]] == 1)
    assert [int((data.sizes == k).sum()) for k in PATTERN_SIZES] == [9, 8, 8]
    for k in PATTERN_SIZES:  # both polarities of every shape, as balanced as possible
        pol = data.polarity[data.sizes == k]
        assert abs(int(pol.sum())) <= 1
    # each pattern lies inside the map and is drawn exactly; boxes keep >= 1 background pixel between them
    bank = pattern_bank()
    boxes = list(zip(data.centres.tolist(), data.sizes.tolist(), data.polarity.tolist()))
    for (cy, cx), k, s in boxes:
        r = k // 2
        assert r <= cy < 100 - r and r <= cx < 100 - r
        window = data.image[0, 0, cy - r:cy + r + 1, cx - r:cx + r + 1]
        torch.testing.assert_close(window, 2.0 * s * bank[k])
    for i, ((y1, x1), k1, _) in enumerate(boxes):
        for (y2, x2), k2, _ in boxes[:i]:
            assert max(abs(y1 - y2), abs(x1 - x2)) >= k1 // 2 + k2 // 2 + 2
    assert int((data.image != 0).sum()) == sum(int(bank[k].sum()) for k in data.sizes.tolist())


def test_scene_is_deterministic_per_seed():
    a, b, c = (make_pattern_scene(s).render(20) for s in (3, 3, 4))
    assert torch.equal(a.image, b.image) and torch.equal(a.centres, b.centres)
    assert not torch.equal(a.image, c.image)


def test_noise_statistics():
    image = make_pattern_scene(0, noise_std=0.25, amplitude=0.0).render(0).image
    assert abs(image.mean().item()) < 0.01 and abs(image.std().item() - 0.25) < 0.01


def test_shifted_rendering_is_a_re_rendering_not_a_roll():
    scene = make_pattern_scene(2, max_shift=20)
    original, shifted = scene.render(0), scene.render(20)
    assert torch.equal(shifted.image[..., 20:, 20:], original.image[..., :80, :80])
    assert torch.equal(shifted.target[..., 20:, 20:], original.target[..., :80, :80])
    rolled = torch.roll(original.image, (20, 20), dims=(-2, -1))
    assert not torch.equal(shifted.image[..., :20, :], rolled[..., :20, :])  # fresh noise, not wrapped content
    moved = original.centres + 20
    inside = (moved < 100).all(dim=1)
    assert torch.equal(shifted.centres, moved[inside])
    assert int(shifted.target.sum()) == int(inside.sum())
    one_axis = scene.render((20, 0))
    assert torch.equal(one_axis.image[..., 20:, :], original.image[..., :80, :])


@pytest.mark.parametrize("seed", [0, 1])
def test_no_single_7x7_filter_detects_all_patterns(seed):
    """LP: maximise the margin t of w·patch + b >= t at centres, <= -t elsewhere (|w|, |b| <= 1)."""
    data = make_pattern_scene(seed, noise_std=0.0).render(0)
    patches = F.unfold(data.image.double(), 7, padding=3)[0].T.numpy()  # (H·W, 49)
    labels = data.target.reshape(-1).numpy() > 0.5
    sign = np.where(labels, -1.0, 1.0)[:, None]
    n = len(patches)
    a_ub = np.hstack([sign * patches, sign, np.ones((n, 1))])  # variables: w (49), b, t
    res = linprog(c=np.r_[np.zeros(50), -1.0], A_ub=a_ub, b_ub=np.zeros(n),
                  bounds=[(-1, 1)] * 50 + [(None, 1)], method="highs")
    assert res.status == 0
    assert -res.fun <= 1e-9, f"a linear filter separates the centres with margin {-res.fun}"
    # the same LP on bright patterns only is feasible: the polarity, not the shapes, defeats a fixed filter
    bright = make_pattern_scene(seed, noise_std=0.0).render(0).image.abs()
    patches = F.unfold(bright.double(), 7, padding=3)[0].T.numpy()
    res = linprog(c=np.r_[np.zeros(50), -1.0], A_ub=np.hstack([sign * patches, sign, np.ones((n, 1))]),
                  b_ub=np.zeros(n), bounds=[(-1, 1)] * 50 + [(None, 1)], method="highs")
    assert res.status == 0 and -res.fun > 0.1


@pytest.mark.parametrize("kwargs,match", [
    ({"seed": -1}, "seed"),
    ({"seed": 0, "size": 5}, "size"),
    ({"seed": 0, "num_patterns": 0}, "num_patterns"),
    ({"seed": 0, "noise_std": -0.1}, "noise_std"),
    ({"seed": 0, "size": 20, "num_patterns": 30}, "num_patterns"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_pattern_scene(**kwargs)


def test_bad_shift_raises():
    scene = make_pattern_scene(0, max_shift=20)
    with pytest.raises(ValueError, match="shift"):
        scene.render(21)
    with pytest.raises(ValueError, match="shift"):
        scene.render((-1, 0))
