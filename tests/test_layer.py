import pytest
import torch
from torch import nn

from acda import ACDAConv2d, AtomGenerator, acda_conv2d, atom_conv2d
from acda.generator import GradInLayout


@pytest.mark.parametrize("generator,hidden_layers", [("paper", (nn.Conv2d, nn.ReLU)),
                                                      ("official", (nn.Conv2d, nn.BatchNorm2d, GradInLayout, nn.Tanh))])
def test_generator_structure(generator, hidden_layers):
    layer = ACDAConv2d(32, 16, 7, padding=3, generator=generator)
    g = layer.generator
    assert tuple(type(m) for m in g.body) == hidden_layers
    assert g.head.out_channels == 6 * 3 * 6  # m · S · m' = 108 (Appendix A.4)
    assert g.head.kernel_size == (3, 3)
    if generator == "paper":
        assert g.body[0].kernel_size == (1, 1) and g.body[0].out_channels == 64  # Appendix A.3
    else:
        assert g.body[0].kernel_size == (3, 3) and g.body[0].out_channels == 64  # max(64, 108 // 2)
    x = torch.randn(2, 32, 9, 11)
    assert layer.generate_atoms(x).shape == (2, 6, 7, 7, 9, 11)
    assert g.coefficients(x, (9, 11)).shape == (2, 6, 18, 9, 11)


def test_atoms_lie_in_span_of_bases():
    layer = ACDAConv2d(3, 4, 5, padding=2, num_atoms=2).double()
    atoms = layer.generate_atoms(torch.randn(1, 3, 6, 6, dtype=torch.float64))
    flat = atoms.permute(0, 1, 4, 5, 2, 3).reshape(-1, 25)
    bases = layer.generator.bases.reshape(-1, 25)
    coeffs = torch.linalg.lstsq(bases.T, flat.T).solution
    torch.testing.assert_close(bases.T @ coeffs, flat.T)


@pytest.mark.parametrize("padding,stride,dilation", [(0, 1, 1), (1, 1, 1), ((2, 1), 2, 1), ("same", 1, 2),
                                                     ("valid", 2, 1), (3, 3, 1)])
def test_output_shape_matches_conv2d(padding, stride, dilation):
    x = torch.randn(2, 4, 13, 10)
    conv = nn.Conv2d(4, 5, 3, stride, padding, dilation)
    layer = ACDAConv2d(4, 5, 3, stride, padding, dilation)
    assert layer(x).shape == conv(x).shape


def test_repr_shows_non_defaults():
    r = repr(ACDAConv2d(8, 16, 3, stride=2, padding=1, bias=False))
    assert "8, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False" in r
    assert "num_atoms=6" in r
    assert "dilation" not in r
    assert "padding='same'" in repr(ACDAConv2d(8, 16, 5, padding="same"))


def test_reset_parameters_kaiming_like_conv2d():
    layer = ACDAConv2d(64, 32, 3)
    bound = 1 / (64 * 6) ** 0.5  # kaiming_uniform(a=√5) bound with fan_in = C·m
    assert layer.coef.abs().max() <= bound and layer.coef.abs().max() > 0.9 * bound
    assert layer.bias.abs().max() <= bound


def test_state_dict_round_trip():
    a = ACDAConv2d(3, 4, 5, padding=2, generator="official")
    b = ACDAConv2d(3, 4, 5, padding=2, generator="official")
    keys = set(a.state_dict())
    assert "coef" in keys and "bias" in keys and not any("bases" in k for k in keys)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_no_host_sync_runs_on_meta_device():
    """A forward that touched data on the host (.item(), .cpu(), numpy) could not run on 'meta'."""
    layer = ACDAConv2d(8, 16, 7, stride=2, padding=3, device="meta")
    out = layer(torch.empty(2, 8, 20, 18, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 16, 10, 9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtypes(dtype):
    layer = ACDAConv2d(3, 4, 3, padding=1, dtype=dtype)
    assert layer.generator.bases.dtype == dtype
    assert layer(torch.randn(1, 3, 5, 5, dtype=dtype)).dtype == dtype


def test_channels_last_and_non_contiguous_inputs():
    layer = ACDAConv2d(3, 4, 3, padding=1).double()
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    ref = layer(x)
    torch.testing.assert_close(layer(x.to(memory_format=torch.channels_last)), ref)
    xt = torch.randn(2, 3, 8, 9, dtype=torch.float64).transpose(2, 3).contiguous().transpose(2, 3)
    torch.testing.assert_close(layer(xt.transpose(2, 3).contiguous().transpose(2, 3)), layer(xt))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(in_channels=0, out_channels=4, kernel_size=3), ValueError, "in_channels must be a positive"),
        (dict(in_channels=3, out_channels=-1, kernel_size=3), ValueError, "out_channels must be a positive"),
        (dict(in_channels=3.0, out_channels=4, kernel_size=3), TypeError, "in_channels must be an int"),
        (dict(in_channels=3, out_channels=4, kernel_size=4), ValueError, "kernel_size must be odd and square"),
        (dict(in_channels=3, out_channels=4, kernel_size=(3, 5)), ValueError, "kernel_size must be odd and square"),
        (dict(in_channels=3, out_channels=4, kernel_size=0), ValueError, "kernel_size must be >= 1"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, num_atoms=0), ValueError, "num_atoms must be a positive"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, stride=0), ValueError, "stride must be >= 1"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, padding=-1), ValueError, "padding must be >= 0"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, padding="full"), ValueError, "padding must be 'same'"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, padding="same", stride=2), ValueError, "strided"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, generator="big"), ValueError, "generator must be one of"),
        (dict(in_channels=3, out_channels=4, kernel_size=5, num_scales=3), ValueError, "num_scales"),
        (dict(in_channels=3, out_channels=4, kernel_size=3, num_bases=9), ValueError, "num_bases"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ACDAConv2d(**kwargs)


def test_bad_inputs():
    layer = ACDAConv2d(3, 4, 5)
    with pytest.raises(ValueError, match=r"expects a 4-D input \(N, C, H, W\)"):
        layer(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match="in_channels=3 channels, got 2"):
        layer(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="too small"):
        layer(torch.randn(1, 3, 3, 8))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        layer([1, 2, 3])


def test_functional_argument_checks():
    x = torch.randn(1, 3, 6, 6)
    atoms = torch.randn(1, 2, 3, 3, 6, 6)
    coef = torch.randn(4, 3, 2)
    with pytest.raises(ValueError, match="output spatial size"):
        atom_conv2d(x, atoms, padding=0)
    with pytest.raises(ValueError, match="atoms must be a 6-D"):
        atom_conv2d(x, atoms[0], padding=1)
    with pytest.raises(ValueError, match="backend must be"):
        atom_conv2d(x, atoms, padding=1, backend="cuda-magic")
    with pytest.raises(ValueError, match="x must have 3 channels"):
        acda_conv2d(torch.randn(1, 5, 6, 6), atoms, coef, padding=1)
    with pytest.raises(ValueError, match="m=2 atoms"):
        acda_conv2d(x, torch.randn(1, 3, 3, 3, 6, 6), coef, padding=1)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        acda_conv2d(x, atoms, coef, torch.randn(3), padding=1)
    with pytest.raises(ValueError, match="coef must be a 3-D"):
        acda_conv2d(x, atoms, coef[0], padding=1)
    with pytest.raises(TypeError, match="atoms has dtype torch.float64 but x has dtype torch.float32"):
        atom_conv2d(x, atoms.double(), padding=1)


def test_generator_rejects_unknown_variant():
    with pytest.raises(ValueError, match="generator must be one of"):
        AtomGenerator(3, 2, 3, variant="huge")


def test_autocast_mixed_precision():
    layer = ACDAConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), layer(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("kernel,stride,padding", [(7, 1, 3), (5, 2, 1), (3, 1, "same")])
def test_coefficients_reconstruct_atoms(kernel, stride, padding):
    """α of ``ACDAConv2d.coefficients`` is (N, m, S, m', H', W') and the atoms are Σ_{s,b} α·ψ (D = αψ)."""
    torch.manual_seed(0)
    layer = ACDAConv2d(3, 4, kernel, stride, padding, num_atoms=2, num_bases=5).double()
    x = torch.randn(2, 3, 11, 9, dtype=torch.float64)
    alpha = layer.coefficients(x)
    s = kernel // 2
    assert alpha.shape == (2, 2, s, 5, *layer.output_size((11, 9)))
    bases = layer.generator.bases.double().view(s, 5, kernel, kernel)
    torch.testing.assert_close(torch.einsum("nasbhw,sbuv->nauvhw", alpha, bases), layer.generate_atoms(x))


def test_coefficients_of_a_1x1_layer():
    layer = ACDAConv2d(3, 4, 1, num_atoms=2)
    x = torch.randn(1, 3, 5, 6)
    assert layer.coefficients(x).shape[:3] == (1, 2, 1)
    assert layer.scale_share(x).shape == (1, 1, 5, 6)
    torch.testing.assert_close(layer.scale_share(x), torch.ones(1, 1, 5, 6))


@pytest.mark.parametrize("in_ch,out_ch,atoms", [(1, 1, 1), (1, 1, 3), (3, 4, 2)])
def test_scale_norms_and_share(in_ch, out_ch, atoms):
    """Norms per scale of β = Σ_a A·α (effective) and of α; the shares are ≥ 0 and sum to 1 per pixel."""
    torch.manual_seed(1)
    layer = ACDAConv2d(in_ch, out_ch, 7, padding=3, num_atoms=atoms).double()
    x = torch.randn(2, in_ch, 8, 10, dtype=torch.float64)
    alpha = layer.coefficients(x)
    beta = torch.einsum("oca,nasbhw->nocsbhw", layer.coef, alpha)  # both paths (direct, Gram) against it
    torch.testing.assert_close(layer.scale_norms(x), beta.pow(2).sum(dim=(1, 2, 4)).sqrt())
    torch.testing.assert_close(layer.scale_norms(x, effective=False), alpha.pow(2).sum(dim=(1, 3)).sqrt())
    for effective in (True, False):
        share = layer.scale_share(x, effective=effective)
        assert share.shape == (2, 3, 8, 10)
        assert (share >= 0).all()
        torch.testing.assert_close(share.sum(dim=1), torch.ones(2, 8, 10, dtype=torch.float64))
        norms = layer.scale_norms(x, effective=effective)
        torch.testing.assert_close(share, norms / norms.sum(dim=1, keepdim=True))


def test_scale_norms_of_a_single_scale():
    """Coefficients on the 3×3 scale only: that scale takes the whole share."""
    layer = ACDAConv2d(1, 1, 7, padding=3, num_atoms=1)
    with torch.no_grad():
        layer.generator.head.weight.view(1, 3, 6, -1)[:, 1:] = 0
        layer.generator.head.bias.view(1, 3, 6)[:, 1:] = 0
    share = layer.scale_share(torch.randn(1, 1, 6, 6))
    torch.testing.assert_close(share[0, 0], torch.ones(6, 6))
