"""MATLAB-compatible bicubic upscaling (acda/data/resize.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from acda.data.resize import bicubic_weights, imresize_bicubic, modcrop


def test_border_values_follow_matlabs_symmetric_extension():
    """imresize([0 1 2], 2, 'bicubic') by hand: output 1 samples u = 0.75, taps at 1-based −1 … 2 read b a a b
    (symmetric extension), Keys weights (a = −0.5) 0.0234375 / 0.2265625 / 0.8671875 / 0.0703125 with signs
    −, +, +, −: 1.09375·a − 0.09375·b."""
    out = imresize_bicubic(torch.tensor([[0.0, 1.0, 2.0]]), 2)[0]
    assert out[0].item() == -0.09375 and out[-1].item() == 2.09375  # the mirror image at the other end
    # output 2 samples u = 1.25: −0.0703125·a + 0.8671875·a + 0.2265625·b − 0.0234375·c
    assert out.tolist() == [-0.09375, 0.1796875, 0.7265625, 1.2734375, 1.8203125, 2.09375]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_interior_equals_pils_bicubic_on_a_photograph(scale):
    """PIL's BICUBIC is the same kernel (a = −0.5) at the same sample positions; it renormalises at the borders
    instead of mirroring, so the two agree away from the 2-pixel border (float32 precision)."""
    image = data.camera()[200:240, 180:230].astype(np.float32) / 255
    ours = imresize_bicubic(torch.from_numpy(image), scale).numpy()
    h, w = image.shape
    pil = np.asarray(Image.fromarray(image, mode="F").resize((w * scale, h * scale), Image.BICUBIC))
    inner = (slice(2 * scale, -2 * scale),) * 2
    np.testing.assert_allclose(ours[inner], pil[inner], atol=2e-6, rtol=0)


def test_weights_rows_sum_to_one_and_batches_resize_alike():
    for length, scale in ((1, 2), (2, 3), (7, 4)):
        torch.testing.assert_close(bicubic_weights(length, scale).sum(1), torch.ones(length * scale, dtype=torch.float64))
    x = torch.rand(2, 3, 5, 6)
    y = imresize_bicubic(x, 3)
    assert y.shape == (2, 3, 15, 18) and y.dtype == torch.float64
    torch.testing.assert_close(y[1, 2], imresize_bicubic(x[1, 2], 3))


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="scale must be a positive int"):
        imresize_bicubic(torch.zeros(2, 2), 0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        imresize_bicubic(torch.zeros(3), 2)
    with pytest.raises(ValueError, match="multiple must be a positive int"):
        modcrop(torch.zeros(4, 4), 0)
    assert modcrop(torch.zeros(3, 11, 14), 4).shape == (3, 8, 12)
