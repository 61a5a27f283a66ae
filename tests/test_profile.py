import pytest
import torch
from torch import nn

from acda import ACDAConv2d, acda_conv2d
from acda.profile import closed_form, count_flops, count_parameters, flop_counter_macs, peak_memory


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_conv_flops_match_closed_form(k):
    x = torch.randn(1, 16, 12, 10)
    conv = nn.Conv2d(16, 8, k, padding=k // 2)
    want = closed_form("conv", 16, 8, k, 12, 10)
    assert count_flops(conv, x).total == want["flops"]
    assert count_parameters(conv) == want["params"]
    assert flop_counter_macs(conv, x) == want["flops"] - 8 * 120  # FlopCounterMode has no bias adds


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("bias", [True, False])
def test_acda_flops_three_ways(k, bias):
    """fvcore (our handles) == closed form of §4.4 (Table 6 convention) == FlopCounterMode + bias adds."""
    c_in, c_out, h, w, m = 16, 8, 12, 10, 6
    layer = ACDAConv2d(c_in, c_out, k, padding=k // 2, bias=bias, num_atoms=m).eval()
    x = torch.randn(1, c_in, h, w)
    got = count_flops(layer, x)
    s_m = layer.generator.num_basis_elements
    conv = closed_form("acda_conv", c_in, c_out, k, h, w, num_atoms=m, bias=bias)
    gen = closed_form("paper_generator", c_in, c_out, k, h, w, num_atoms=m, num_basis_elements=s_m)
    assert got.total - got.atom_generation("", layer, (h, w)) == conv["flops"]
    assert got.atom_generation("", layer, (h, w)) == gen["flops"]
    assert count_parameters(layer) - count_parameters(layer.generator) == conv["params"]
    assert count_parameters(layer.generator) == gen["params"]
    bias_adds = (c_out if bias else 0) * h * w + (64 + m * s_m) * h * w
    assert flop_counter_macs(layer, x) == got.total - bias_adds


def test_table6_conv_and_acda_rows_from_closed_form():
    """The closed forms reproduce Table 6's printed Conv and ACDA (conv only) FLOPs to the digit."""
    printed = {3: (5900.8, 4073.0), 5: (16386.6, 4318.7), 7: (32115.2, 4687.4)}
    for k, (conv, acda) in printed.items():
        assert round(closed_form("conv", 256, 256, k, 100, 100)["flops"] / 1e6, 1) == conv
        assert round(closed_form("acda_conv", 256, 256, k, 100, 100)["flops"] / 1e6, 1) == acda


def test_strict_mode_names_unsupported_operators():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 0)

    with pytest.raises(RuntimeError, match="cumsum"):
        count_flops(Odd(), torch.randn(3))
    assert count_flops(Odd(), torch.randn(3), strict=False).total == 0


def test_official_generator_counts_are_explicit():
    layer = ACDAConv2d(8, 8, 3, padding=1, generator="official").eval()
    count_flops(layer, torch.randn(1, 8, 6, 6))  # strict: tanh/batch_norm/im2col are all handled


def test_peak_memory_cpu_counts_allocations_in_order():
    x = torch.randn(1000)

    def fn():
        a = x * 2  # 4000 bytes
        b = a + 1  # 4000 bytes, peak 8000
        del a
        c = b.exp()  # a freed: 8000 again
        return c.sum()

    peak = peak_memory(fn)
    assert 8000 + 4 <= peak <= 8000 + 64  # plus the scalar sum and the wrapped Python scalars


def test_peak_memory_sees_allocations_inside_native_kernels():
    """The fused native op copies x to channels-last inside C++: the profiler's allocator events see it."""
    x = torch.randn(1, 32, 20, 20)
    atoms, coef = torch.randn(1, 6, 3, 3, 20, 20), torch.randn(16, 32, 6)
    out_bytes, x_bytes = 16 * 400 * 4, 32 * 400 * 4
    assert peak_memory(lambda: acda_conv2d(x, atoms, coef, None, 1, 1, backend="native")) >= out_bytes + x_bytes
    with pytest.raises(ValueError, match="peak_memory measures 'cpu' or 'cuda'"):
        peak_memory(lambda: None, "meta")


def test_peak_memory_sees_saved_tensors_in_backward():
    layer = ACDAConv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 16, 16)
    fwd = peak_memory(lambda: layer(x))
    fwd_bwd = peak_memory(lambda: layer(x).sum().backward())
    with torch.no_grad():
        no_grad = peak_memory(lambda: layer(x))
    assert fwd_bwd > fwd >= no_grad > 0
    cols = 4 * 9 * 16 * 16 * 4  # the unfolded input alone
    assert no_grad >= cols
