"""The two-layer ACDA computation equals the per-pixel filter formula (paper Eq. 2, K = A·D)."""

import pytest
import torch
import torch.nn.functional as F

from acda import ACDAConv2d, acda_conv2d, per_pixel_filters


def per_pixel_loop(x, atoms, coef, bias, stride, padding, dilation):
    """Slow, obviously-correct Eq. 2: at each output pixel, build K_ij = A·D_ij and apply it."""
    n, c, _, _ = x.shape
    _, m, k, _, oh, ow = atoms.shape
    o = coef.shape[0]
    xp = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    out = x.new_zeros(n, o, oh, ow)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                kij = torch.zeros(o, c, k, k, dtype=x.dtype)
                for a in range(m):
                    kij = kij + coef[:, :, a, None, None] * atoms[b, a, :, :, i, j]
                acc = bias.clone() if bias is not None else x.new_zeros(o)
                for u in range(k):
                    for v in range(k):
                        pix = xp[b, :, i * stride[0] + u * dilation[0], j * stride[1] + v * dilation[1]]
                        acc = acc + kij[:, :, u, v] @ pix
                out[b, :, i, j] = acc
    return out


CASES = [
    # k, stride, padding, dilation, (H, W)
    (1, 1, 0, 1, (5, 4)),
    (1, 2, 1, 1, (5, 6)),
    (3, 1, 1, 1, (6, 5)),
    (3, 2, 0, 1, (7, 6)),
    (3, 1, 2, 2, (6, 7)),
    (5, 1, 2, 1, (7, 5)),
    (5, 2, 1, 1, (8, 9)),
    (5, 1, 0, 2, (10, 9)),
    (7, 1, 3, 1, (8, 7)),
    (7, 2, 3, 1, (9, 8)),
    (7, 1, (1, 4), 1, (9, 8)),
]


@pytest.mark.parametrize("k,stride,padding,dilation,size", CASES)
@pytest.mark.parametrize("generator", ["paper", "official"])
def test_layer_equals_per_pixel_formula(k, stride, padding, dilation, size, generator):
    torch.manual_seed(k * 100 + stride)
    layer = ACDAConv2d(3, 4, k, stride, padding, dilation, num_atoms=3, generator=generator)
    layer = layer.double().eval()
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    atoms = layer.generate_atoms(x)
    ref = per_pixel_loop(x, atoms, layer.coef, layer.bias, layer.stride, layer.padding, layer.dilation)
    assert out.shape == ref.shape == torch.nn.Conv2d(3, 4, k, stride, padding, dilation)(x.float()).shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)

    grad = torch.randn_like(out)
    params = [x, layer.coef, layer.bias, *layer.generator.parameters()]
    got = torch.autograd.grad(out, params, grad)
    want = torch.autograd.grad(ref, params, grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9)


def test_per_pixel_filters_match_two_layer():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    atoms = torch.randn(2, 4, 3, 3, 6, 5, dtype=torch.float64)
    coef = torch.randn(5, 3, 4, dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64)
    kernels = per_pixel_filters(atoms, coef)
    assert kernels.shape == (2, 6, 5, 5, 3, 3, 3)
    cols = F.unfold(x, 3, padding=1).view(2, 3, 3, 3, 6, 5)
    direct = torch.einsum("nhwocuv,ncuvhw->nohw", kernels, cols) + bias[:, None, None]
    torch.testing.assert_close(acda_conv2d(x, atoms, coef, bias, 1, 1, 1), direct)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 0, 1), (1, 2, 2)])
def test_gradcheck_acda_conv2d(stride, padding, dilation):
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    oh = (5 + 2 * padding - dilation * 2 - 1) // stride + 1
    ow = (6 + 2 * padding - dilation * 2 - 1) // stride + 1
    atoms = torch.randn(1, 3, 3, 3, oh, ow, dtype=torch.float64, requires_grad=True)
    coef = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: acda_conv2d(*t, stride, padding, dilation), (x, atoms, coef, bias)
    )
    assert torch.autograd.gradgradcheck(
        lambda *t: acda_conv2d(*t, stride, padding, dilation), (x, atoms, coef, bias)
    )


def test_gradcheck_layer_end_to_end():
    layer = ACDAConv2d(2, 3, 3, padding=1, num_atoms=2).double()
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("k", [3, 5, 7])
def test_translation_equivariance(k):
    """Paper §3.2, Fig. 5/6b: shifting the input by (20, 20) shifts the output by (20, 20)."""
    torch.manual_seed(k)
    layer = ACDAConv2d(2, 3, k, padding=k // 2).double().eval()
    x = torch.randn(1, 2, 64, 64, dtype=torch.float64)
    shifted = torch.zeros_like(x)
    shifted[..., 20:, 20:] = x[..., :-20, :-20]
    y, ys = layer(x), layer(shifted)
    border = 2 * k  # generator (3x3) + atom conv (k x k) receptive field, with margin
    interior = (slice(None), slice(None), slice(20 + border, 64 - border), slice(20 + border, 64 - border))
    shifted_back = (slice(None), slice(None), slice(border, 44 - border), slice(border, 44 - border))
    torch.testing.assert_close(ys[interior], y[shifted_back], rtol=0, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
def test_atoms_are_centred_on_their_window(stride):
    """Equivariance under strided and unpadded settings: a shift by `stride` pixels moves the
    output by one pixel, so the generator's window is aligned with the atom window."""
    torch.manual_seed(3)
    layer = ACDAConv2d(2, 2, 5, stride=stride, padding=0).double()
    x = torch.randn(1, 2, 30, 30, dtype=torch.float64)
    shift = 2 * stride
    y = layer(x[..., shift:, shift:])
    y_full = layer(x)
    d = shift // stride
    torch.testing.assert_close(y[..., 2:-2, 2:-2], y_full[..., d + 2 : d + 2 + y.shape[-2] - 4, d + 2 : d + 2 + y.shape[-1] - 4])


def test_equals_conv2d_when_atoms_are_static():
    """With a constant generator output the layer is an ordinary convolution with K = A·D."""
    torch.manual_seed(2)
    layer = ACDAConv2d(3, 4, 3, padding=1, num_atoms=2).double()
    with torch.no_grad():
        for p in layer.generator.parameters():
            p.zero_()
        layer.generator.head.bias.normal_()
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    atoms = layer.generate_atoms(x)[0, :, :, :, 0, 0]  # (m, k, k), the same at every pixel
    weight = torch.einsum("ocb,buv->ocuv", layer.coef, atoms)
    torch.testing.assert_close(layer(x), F.conv2d(x, weight, layer.bias, padding=1))
