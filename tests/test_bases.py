import math

import pytest
import torch

from acda.bases import default_num_scales, fourier_bessel_basis, gram, multiscale_bases


@pytest.mark.parametrize("k", [3, 5, 7, 9])
def test_shape_and_determinism(k):
    b = fourier_bessel_basis(k, 6)
    assert b.shape == (6, k, k) and b.dtype == torch.float32
    assert torch.equal(b, fourier_bessel_basis(k, 6))


def _orders(k, n):
    """(angular order, cos/sin) of the first n elements, from the recipe's ordering."""
    from scipy import special

    R = k // 2 + 0.5
    cands = sorted((z, order) for order in range(16) for z in special.jn_zeros(order, 32)
                   if z <= math.pi * R * (2 if k == 3 else 1.5))
    labels = []
    for _, order in cands:
        labels += [(order, "c")] if order == 0 else [(order, "c"), (order, "s")]
    return labels[:n]


@pytest.mark.parametrize("k", [3, 5, 7])
def test_orthogonal_on_support(k):
    """Elements of different angular order, or cos vs sin, are exactly orthogonal on the grid;
    same-order radial pairs are nearly so, and more so as the grid gets finer."""
    b = fourier_bessel_basis(k, 6, dtype=torch.float64)
    g = gram(b)
    labels = _orders(k, 6)
    for i in range(6):
        for j in range(i + 1, 6):
            if labels[i][0] != labels[j][0] or labels[i][1] != labels[j][1]:
                assert abs(g[i, j]) < 1e-12, (i, j, labels[i], labels[j])
    off = (g - torch.diag(torch.diag(g))).abs().max() / torch.diag(g).max()
    assert off < {3: 0.1, 5: 0.015, 7: 0.002}[k]


@pytest.mark.parametrize("k", [3, 5, 7])
def test_first_element_is_radially_symmetric(k):
    b = fourier_bessel_basis(k, 6, dtype=torch.float64)[0]
    for rot in range(1, 4):
        torch.testing.assert_close(torch.rot90(b, rot), b)
    torch.testing.assert_close(b.flip(0), b)
    torch.testing.assert_close(b.T, b)
    assert b[k // 2, k // 2] == b.max()  # J_0 peaks at the centre


@pytest.mark.parametrize("k", [3, 5, 7])
def test_zero_outside_unit_disk_and_normalised(k):
    b = fourier_bessel_basis(k, k * k - 1, dtype=torch.float64)
    L = k // 2
    yy, xx = torch.meshgrid(torch.arange(-L, L + 1.0), torch.arange(-L, L + 1.0), indexing="ij")
    outside = (xx**2 + yy**2).sqrt() / (L + 0.5) >= 1
    assert torch.all(b[:, outside] == 0)
    # One scalar per scale: mean squared norm over the kept candidates is 1.
    assert math.isclose(float((b**2).sum((1, 2)).mean()), 1.0, rel_tol=1e-12)


def test_known_values_3x3():
    """Pin the recipe: J_0(j_01 r)/|J_1(j_01)| on the 3×3 grid, up to the per-scale scalar."""
    from scipy import special

    z = special.jn_zeros(0, 1)[0]
    b0 = fourier_bessel_basis(3, 1, dtype=torch.float64)[0]
    raw = torch.tensor([[special.jv(0, z * math.hypot(i, j) / 1.5) for j in (-1, 0, 1)] for i in (-1, 0, 1)])
    raw = raw / abs(special.jv(1, z))
    ratio = b0 / raw
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0, 0])), rtol=1e-12, atol=0)


def test_multiscale_padding_and_scales():
    psi = multiscale_bases(7, 6)
    assert psi.shape == (18, 7, 7)
    torch.testing.assert_close(psi[:6, 2:5, 2:5], fourier_bessel_basis(3, 6))
    outside = torch.ones(7, 7, dtype=torch.bool)
    outside[2:5, 2:5] = False
    assert torch.all(psi[:6, outside] == 0)
    torch.testing.assert_close(psi[6:12, 1:6, 1:6], fourier_bessel_basis(5, 6))
    torch.testing.assert_close(psi[12:], fourier_bessel_basis(7, 6))
    assert multiscale_bases(7, 4, num_scales=2).shape == (8, 7, 7)
    assert multiscale_bases(1).shape == (1, 1, 1)
    assert [default_num_scales(k) for k in (1, 3, 5, 7)] == [1, 1, 2, 3]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: fourier_bessel_basis(4), "kernel_size must be a positive odd"),
        (lambda: fourier_bessel_basis(0), "kernel_size must be a positive odd"),
        (lambda: fourier_bessel_basis(3, 9), r"num_bases must be an int in \[1, 8\]"),
        (lambda: fourier_bessel_basis(3, True), r"num_bases must be an int in \[1, 8\]"),
        (lambda: multiscale_bases(5, num_scales=3), r"num_scales must be an int in \[1, 2\]"),
        (lambda: multiscale_bases(3, num_bases=0), "num_bases"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_paper_variant_is_pinned():
    """The paper recipe's numbers, pinned (the official variant was added without changing them)."""
    psi = multiscale_bases(7, 6, dtype=torch.float64)
    assert torch.equal(psi, multiscale_bases(7, 6, dtype=torch.float64, variant="paper"))
    for got, want in [(psi.sum(), 5.690119178040536), ((psi**2).sum(), 16.829420453891807),
                      (psi[0, 3, 3], 0.6647468146752835), (psi[13, 2, 4], 0.21907616581800696),
                      (psi[17, 0, 3], -0.11969757187588585)]:
        assert math.isclose(float(got), want, rel_tol=1e-12), (float(got), want)


# Official (the authors' code): DCFNet's table cuts on the next zero j_{k,q+1}, which keeps a prefix
# of the paper's sorted candidates at 3×3, 5×5, 7×7: 6 / 14 / 38 of 8 / 24 / 48.
OFFICIAL_KEPT = {3: 6, 5: 14, 7: 38}


@pytest.mark.parametrize("k", [3, 5, 7])
def test_official_is_the_paper_basis_transposed_renormalised_and_rounded_to_float32(k):
    paper = fourier_bessel_basis(k, k * k - 1, dtype=torch.float64)
    kept = OFFICIAL_KEPT[k]
    # c_official / c_paper: root-mean-square norm of the official candidates in paper units
    scale = float((paper[:kept] ** 2).sum((1, 2)).mean().sqrt())
    official = fourier_bessel_basis(k, kept, dtype=torch.float64, variant="official")
    want = (paper[:kept].transpose(1, 2) / scale).float().double()
    torch.testing.assert_close(official, want, rtol=2.5e-7, atol=1e-12)  # at most a float32 ulp apart
    assert torch.equal(official, official.float().double())  # float32 values
    assert math.isclose(float((official**2).sum((1, 2)).mean()), 1.0, rel_tol=1e-6)
    assert math.isclose(1 / scale, {3: 1.0125738, 5: 1.0574233, 7: 1.0068077}[k], rel_tol=1e-6)


def test_official_transpose_swaps_cos_and_sin():
    """θ = atan2(dx, dy): the k = 1 cos element of the official set is the paper's sin, transposed."""
    paper = fourier_bessel_basis(3, 3, dtype=torch.float64)
    official = fourier_bessel_basis(3, 3, dtype=torch.float64, variant="official")
    ratio = float(official[0, 1, 1] / paper[0, 1, 1])
    torch.testing.assert_close(official[1], (paper[2] * ratio).float().double(), rtol=2.5e-7, atol=1e-12)
    torch.testing.assert_close(official[2], (paper[1] * ratio).float().double(), rtol=2.5e-7, atol=1e-12)


def test_official_multiscale_set():
    psi = multiscale_bases(7, 6, dtype=torch.float64, variant="official")
    assert psi.shape == (18, 7, 7)
    torch.testing.assert_close(psi[:6, 2:5, 2:5], fourier_bessel_basis(3, 6, dtype=torch.float64, variant="official"),
                               rtol=0, atol=0)
    torch.testing.assert_close(psi[12:], fourier_bessel_basis(7, 6, dtype=torch.float64, variant="official"),
                               rtol=0, atol=0)
    assert torch.equal(multiscale_bases(7, 6, variant="official"), psi.float())
    assert torch.equal(multiscale_bases(1, variant="official"), torch.ones(1, 1, 1))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: fourier_bessel_basis(3, 7, variant="official"),
         r"num_bases must be an int in \[1, 6\] for kernel_size=3 \(variant='official'\)"),
        (lambda: fourier_bessel_basis(5, 15, variant="official"), r"\[1, 14\]"),
        (lambda: multiscale_bases(5, 7, variant="official"), r"\[1, 6\] for kernel_size=3"),
        (lambda: multiscale_bases(5, variant="authors"), r"variant must be one of \('paper', 'official'\)"),
        (lambda: fourier_bessel_basis(3, variant=None), "variant must be one of"),
    ],
)
def test_bad_variant_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_large_kernels_keep_every_zero_below_the_cut():
    """Scales above 39×39 need more than 32 zeros per order; none below the cut may be dropped."""
    from scipy import special

    from acda.bases import _candidates

    L = 25
    cut = math.pi * (L + 0.5) * 1.5
    expected = sum(int((special.jn_zeros(k, 80) <= cut).sum()) for k in range(16))
    assert len(_candidates(L, "paper")) == expected > 16 * 32 // 2


def test_bases_cache_is_bounded_and_holds_only_the_used_elements():
    from acda.bases import _scale_bases

    _scale_bases.cache_clear()
    multiscale_bases(21, 6)
    assert _scale_bases.cache_info().maxsize == 256
    assert all(head.shape[0] == 6 and not head.flags.writeable
               for head, _ in (_scale_bases(2 * s + 1, "paper", 6) for s in range(1, 11)))
