"""Exporting models with ACDA layers (acda/export.py): torch.export round trips with the custom ops; the
standard-op program runs anywhere, in onnxruntime included, and equals the layer."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import acda
from acda.export import decompositions, standard_program
from acda.models import get_model


@pytest.fixture
def model_and_input():
    torch.manual_seed(0)
    model = get_model("lenet_acda", num_classes=10, image_size=16).eval()
    return model, torch.randn(2, 3, 16, 16)


@pytest.mark.parametrize("backend", ["native", "shift", "reference"])
def test_torch_export_round_trips_with_the_custom_ops(model_and_input, backend):
    model, x = model_and_input
    acda.set_backend(model, backend)
    with torch.no_grad():
        want = model(x)
    program = torch.export.export(model, (x,))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    # native and shift run a fused custom op, kept whole; the reference backend is plain unfold + einsum
    assert any(op.startswith("acda.") for op in ops) == (backend != "reference")
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(buffer).module()(x), want, rtol=1e-5, atol=1e-5)


def test_standard_program_has_only_standard_ops_and_equals_the_layer(model_and_input):
    model, x = model_and_input
    program = standard_program(model, (x,))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert ops and not any("acda" in op for op in ops)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)
    assert set(decompositions()) == {torch.ops.acda.atom_conv2d.default, torch.ops.acda.acda_conv2d.default,
                                     torch.ops.acda.acda_alpha_conv2d.default, torch.ops.acda.channels_first.default}


def test_onnx_export_runs_in_onnxruntime(model_and_input, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, x = model_and_input
    path = tmp_path / "lenet_acda.onnx"
    torch.onnx.export(standard_program(model, (x,)), (x,), dynamo=True, verbose=False).save(str(path))
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5, atol=1e-5)
