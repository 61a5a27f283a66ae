"""generator="official" reproduces the authors' released layer ``Conv_DCFD`` (paper §3.2, A.2, A.3).

The fixture (``tests/fixtures/official``, see its README) holds inputs, weights and outputs of the
authors' layer re-typed in float64, for kernel sizes 3, 5, 7 at strides 1 and 2, with BatchNorm in
eval mode (stored running statistics) and in training mode (batch statistics).
"""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from acda import ACDAConv2d, AtomGenerator
from acda.bases import multiscale_bases

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "official_fixture.npz"
# their state_dict prefixes → ours (the README's table)
PREFIXES = {"bases_net.0.": "generator.body.0.", "bases_net.1.": "generator.body.1.",
            "bases_net.3.": "generator.head.", "bases_net.4.": "generator.post.0."}
CONFIGS = [(k, s) for k in (3, 5, 7) for s in (1, 2)]


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE) as f:
        return {key: f[key] for key in f.files}


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def authors_layer(fixture, k: int, stride: int) -> ACDAConv2d:
    """Our official layer with the fixture's weights of kernel size ``k`` mapped in (float64)."""
    _, c_in, c_out, m = (int(v) for v in fixture["meta.N_Cin_Cout_M"])
    layer = ACDAConv2d(c_in, c_out, k, stride, (k - 1) // 2, num_atoms=m, num_bases=m,
                       generator="official", dtype=torch.float64)
    state = layer.state_dict()
    prefix = f"k{k}."
    names = [key[len(prefix):] for key in fixture if key.startswith(prefix) and key != prefix + "bases"]
    for name in names:
        value = _tensor(fixture[prefix + name])
        if name == "coef":
            state["coef"] = value.reshape(c_out, c_in, m)
        elif name == "bias":
            state["bias"] = value
        else:
            theirs = next(p for p in PREFIXES if name.startswith(p))
            state[PREFIXES[theirs] + name[len(theirs):]] = value
    assert len(names) == 14  # 2 convs × 2 + 2 BatchNorms × 4 + coef + bias: every tensor mapped
    layer.load_state_dict(state)
    return layer


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("k,stride", CONFIGS)
def test_reproduces_the_authors_layer(fixture, k, stride, mode):
    layer = authors_layer(fixture, k, stride).train(mode == "train")
    x = _tensor(fixture[f"k{k}_s{stride}.x"])
    want = _tensor(fixture[f"k{k}_s{stride}.out_{mode}"])
    with torch.no_grad():
        got = layer(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_default_bases_are_the_authors(fixture, k):
    """No ``bases=``: the official generator uses the authors' bases, the paper one the paper's."""
    theirs = torch.from_numpy(fixture[f"k{k}.bases"]).view(-1, k, k)
    for dtype in (torch.float32, torch.float64):
        official = AtomGenerator(3, 6, k, variant="official", dtype=dtype).bases
        assert official.dtype == dtype
        assert torch.equal(official, theirs.to(dtype))
        assert torch.equal(official, multiscale_bases(k, 6, dtype=dtype, variant="official"))
        paper = AtomGenerator(3, 6, k, variant="paper", dtype=dtype).bases
        assert torch.equal(paper, multiscale_bases(k, 6, dtype=dtype))
    custom = torch.randn(4, k, k)
    assert torch.equal(AtomGenerator(3, 6, k, variant="official", bases=custom).bases, custom)


@pytest.mark.parametrize("stride", [1, 2])
def test_stride_sits_on_the_first_conv_for_official_and_on_the_head_for_paper(stride):
    official = AtomGenerator(3, 6, 5, (stride, stride), variant="official")
    assert official.body[0].stride == (stride, stride) and official.body[0].padding == (0, 0)
    assert official.head.stride == (1, 1) and official.head.padding == (1, 1)
    paper = AtomGenerator(3, 6, 5, (stride, stride), variant="paper")
    assert paper.body[0].kernel_size == (1, 1) and paper.head.stride == (stride, stride)
    keys = {"body.0.weight", "body.0.bias", "head.weight", "head.bias"}
    keys |= {f"{bn}.{name}" for bn in ("body.1", "post.0")
             for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert set(official.state_dict()) == keys  # the names (and shapes) of before the stride moved


@pytest.mark.parametrize("k,size", [(3, (9, 7)), (5, (7, 10)), (7, (11, 9))])
def test_odd_sizes_at_stride_2_extend_the_authors_layer(k, size):
    """Their reshape needs H, W divisible by the stride; elsewhere, with their padding, Φ is still
    conv(stride 2, padding 1) → BN → Tanh → conv(padding 1) → BN → Tanh, evaluated directly."""
    torch.manual_seed(k)
    layer = ACDAConv2d(3, 4, k, 2, (k - 1) // 2, num_atoms=2, num_bases=3, generator="official")
    layer = layer.double().eval()
    g = layer.generator
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    h = F.conv2d(x, g.body[0].weight, g.body[0].bias, stride=2, padding=1)
    h = g.post(g.head(g.body[1:](h)))
    out = layer.output_size(size)
    assert tuple(h.shape[-2:]) == out
    torch.testing.assert_close(layer.coefficients(x).reshape(h.shape), h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("padding,dilation", [(0, 1), (1, 2)])
def test_official_atoms_are_centred_on_their_window_at_stride_2(padding, dilation):
    """Geometries their layer does not define: shifting the input by 2·stride moves the output by 2."""
    torch.manual_seed(4)
    layer = ACDAConv2d(2, 2, 5, 2, padding, dilation, generator="official").double().eval()
    x = torch.randn(1, 2, 31, 30, dtype=torch.float64)
    y_full, y = layer(x), layer(x[..., 4:, 4:])
    h, w = y.shape[-2:]
    torch.testing.assert_close(y[..., 2:-2, 2:-2], y_full[..., 4:h, 4:w], rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gradcheck_official_strided_generator(mode):
    torch.manual_seed(5)
    layer = ACDAConv2d(2, 2, 3, 2, 1, num_atoms=1, num_bases=2, generator="official").double()
    layer.train(mode == "train")
    x = torch.randn(2, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer.generate_atoms, (x,))
