"""int8 optimize_for_inference: accuracy and top-1 agreement with float32 on a model trained here, and clear refusals."""
from __future__ import annotations

import copy

import pytest
import torch
from helpers import DIGITS_RESNEXT, train_digits_resnext
from torch import nn

pytest.importorskip("torchao")

import lucid  # noqa: E402
from lucid.benchmark import randomize_batchnorm  # noqa: E402
from lucid.models import ResNeXt, ResNeXtConfig  # noqa: E402
from lucid.optimize import INT8_BACKENDS  # noqa: E402


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(model, train images, val images, val labels): helpers.train_digits_resnext."""
    return train_digits_resnext()


def _batches(images: torch.Tensor, size: int = 64) -> list[torch.Tensor]:
    return [images[i:i + size] for i in range(0, len(images), size)]


@pytest.fixture(scope="module")
def int8_models(trained) -> dict[str, nn.Module]:
    """The trained model quantized on the same calibration batches for each int8 backend."""
    model, train_images, _, _ = trained
    return {
        backend: lucid.optimize_for_inference(model, dtype=torch.int8, calibration=_batches(train_images), calibration_batches=8, backend=backend)
        for backend in INT8_BACKENDS
    }


@pytest.mark.slow
@pytest.mark.parametrize("backend", INT8_BACKENDS)
def test_int8_keeps_accuracy_and_agrees_with_float32(trained, int8_models, backend: str) -> None:
    model, _, val_images, val_labels = trained
    with torch.no_grad():
        ref = model(val_images)
    acc_fp32 = (ref.argmax(1) == val_labels).float().mean().item()
    assert acc_fp32 > 0.85  # the model really learned, so agreement below means something
    fast = int8_models[backend]
    assert fast.dtype == torch.int8 and fast.backend == backend
    out = fast(val_images)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    acc_int8 = (out.argmax(1) == val_labels).float().mean().item()
    agreement = (out.argmax(1) == ref.argmax(1)).float().mean().item()
    assert abs(acc_int8 - acc_fp32) <= 0.015, (acc_fp32, acc_int8)
    assert agreement >= 0.97, agreement
    # quantization error is small relative to the logits, but present (it really is int8)
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    assert 1e-4 < rel < 0.2, rel


@pytest.mark.slow
def test_int8_backends_compute_the_same_logits(trained, int8_models) -> None:
    """inductor's C++ forward against the same oneDNN int8 operators called one by one from Python."""
    val_images = trained[2]
    lowered, compiled = int8_models["onednn-lowered"](val_images), int8_models["inductor-aot"](val_images)
    torch.testing.assert_close(compiled, lowered, rtol=0, atol=1e-5 * lowered.abs().max().item())


def test_int8_default_needs_a_compiler_and_falls_back_without_one(monkeypatch) -> None:
    x = torch.randn(2, 1, 16, 16)
    assert lucid.optimize_for_inference(_tiny(), dtype=torch.int8, calibration=[x], calibration_batches=1).backend == "inductor-aot"
    monkeypatch.setattr(lucid.optimize, "compiler_available", lambda: False)
    assert lucid.optimize_for_inference(_tiny(), dtype=torch.int8, calibration=[x], calibration_batches=1).backend == "onednn-lowered"
    with pytest.raises(ValueError, match="backend='inductor-aot' needs a C\\+\\+ compiler"):
        lucid.optimize_for_inference(_tiny(), dtype=torch.int8, calibration=[x], calibration_batches=1, backend="inductor-aot")
    with pytest.raises(ValueError, match=r"backend must be one of \['inductor-aot', 'onednn-lowered', 'openvino'\] for torch.int8 on cpu, got 'onednn-graph'"):
        lucid.optimize_for_inference(_tiny(), dtype=torch.int8, calibration=[x], calibration_batches=1, backend="onednn-graph")


@pytest.mark.slow
def test_int8_takes_image_label_pairs_and_any_batch_size(trained) -> None:
    model, train_images, val_images, _ = trained
    labels = torch.zeros(len(train_images), dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_images, labels), batch_size=32)
    fast = lucid.optimize_for_inference(model, dtype=torch.int8, calibration=loader, calibration_batches=4, backend="onednn-lowered")
    with torch.no_grad():
        ref = model(val_images[:5])
    for n in (5, 1, 5):  # a new batch size compiles again; the first shape is reused
        out = fast(val_images[:n])
        assert out.shape == (n, 10)
        assert (out.argmax(1) == ref[:n].argmax(1)).float().mean().item() >= 0.8
    assert out.to(torch.float64).dtype == torch.float64 and fast(val_images[:5].double()).dtype == torch.float64
    assert not model.training  # the model is untouched


def _tiny() -> nn.Module:
    return randomize_batchnorm(ResNeXt(ResNeXtConfig(**DIGITS_RESNEXT))).eval()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(), ValueError, "needs calibration="),
        (dict(calibration=[torch.randn(2, 1, 16, 16)] * 2, calibration_batches=3), ValueError, "calibration gave 2 batch"),
        (dict(calibration=[torch.randn(2, 3, 16, 16)]), ValueError, "calibration batch 0: expected images of shape"),
        (dict(calibration=[torch.full((2, 1, 16, 16), float("nan"))]), ValueError, "non-finite"),
        (dict(calibration=[torch.zeros(2, 1, 16, 16, dtype=torch.uint8)]), ValueError, "expected float images"),
        (dict(calibration=["x"]), TypeError, "expected a tensor of images"),
        (dict(calibration=torch.randn(2, 1, 16, 16)), TypeError, "got one tensor"),
        (dict(calibration=[torch.randn(2, 1, 16, 16)], calibration_batches=0), ValueError, "calibration_batches must be a positive int"),
        (dict(calibration=[torch.randn(2, 1, 16, 16)], compile=True), ValueError, "compile=True does not apply"),
    ],
)
def test_int8_refuses_bad_calibration(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        lucid.optimize_for_inference(_tiny(), dtype=torch.int8, **{"calibration_batches": 1, **kwargs})


def test_int8_refuses_train_mode_and_calibration_for_float() -> None:
    model = _tiny().train()
    with pytest.raises(ValueError, match="train mode; call model.eval"):
        lucid.optimize_for_inference(model, dtype=torch.int8, calibration=[torch.randn(2, 1, 16, 16)], calibration_batches=1)
    with pytest.raises(ValueError, match="applies to dtype=torch.int8 only"):
        lucid.optimize_for_inference(model.eval(), calibration=[torch.randn(2, 1, 16, 16)])


def test_int8_module_refuses_compile_export_and_trace() -> None:
    model = _tiny()
    x = torch.randn(2, 1, 16, 16)
    fast = lucid.optimize_for_inference(model, dtype=torch.int8, calibration=[x], calibration_batches=1)
    for capture in (lambda: torch.compile(fast, backend="eager")(x), lambda: torch.export.export(fast, (x,)), lambda: torch.jit.trace(fast, (x,))):
        with pytest.raises(RuntimeError, match="export the plain model"):
            capture()


@pytest.mark.slow
def test_lucid_lowering_passes_give_torchaos_outputs_exactly() -> None:
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

    from lucid.optimize.quantize import pool_in_uint8, quantize_in_place

    x = torch.randn(3, 1, 32, 32)
    fast = lucid.optimize_for_inference(_tiny(), dtype=torch.int8, calibration=[x], calibration_batches=1, backend="onednn-lowered")
    plain = lower_pt2e_quantized_to_x86(copy.deepcopy(fast.net.quantized), (x,))
    passed = lower_pt2e_quantized_to_x86(copy.deepcopy(fast.net.quantized), (x,))
    assert pool_in_uint8(passed) == 1  # the stem's max-pool
    assert "max_pool2d_with_indices" not in passed.code
    assert quantize_in_place(passed) >= 1  # the images' quantization, at least
    assert "quantize_per_tensor(" not in passed.code
    with torch.no_grad():
        assert torch.equal(passed(x), plain(x))
        assert torch.equal(fast(x), plain(x))


def test_quantize_codes_matches_torchaos_quantization_on_ties_and_bounds() -> None:
    from torchao.quantization.pt2e import quantize_pt2e  # noqa: F401  (registers quantized_decomposed)

    from lucid.optimize.quantize import quantize_codes

    scale, zero_point = 0.05, 17
    ties = (torch.arange(-400, 400) + 0.5) * scale  # near-halfway points, beyond both ends of [0, 255]
    x = torch.cat([ties, torch.randn(5000) * 5]).reshape(1, 1, -1, 100).contiguous(memory_format=torch.channels_last)
    ref = torch.ops.quantized_decomposed.quantize_per_tensor.default(x, scale, zero_point, 0, 255, torch.uint8)
    assert torch.equal(quantize_codes(x, scale, zero_point, 0, 255, torch.uint8), ref)


def test_max_pool_codes_matches_float_max_pool_for_every_window_shape() -> None:
    """The uint8 pool against torch's float max-pool over kernels, strides, paddings, dilations and ceil mode."""
    import itertools

    from lucid.optimize.quantize import max_pool_codes

    torch.manual_seed(0)
    checked = 0
    for h, w, k, s, p, d, ceil in itertools.product((7, 8, 13), (9, 12), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2), (False, True)):
        if p > k // 2 or (k - 1) * d + 1 > min(h, w) + 2 * p:
            continue  # torch refuses these shapes
        codes = torch.randint(0, 256, (2, 5, h, w), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
        expected = torch.nn.functional.max_pool2d(codes.float(), k, s, p, d, ceil).to(torch.uint8)
        got = max_pool_codes(codes, [k, k], [s, s], [p, p], [d, d], ceil)
        assert torch.equal(got, expected), (h, w, k, s, p, d, ceil)
        assert got.is_contiguous(memory_format=torch.channels_last)
        checked += 1
    assert checked > 300


@pytest.mark.slow
def test_int8_module_copies_without_its_compiled_graphs() -> None:
    x = torch.randn(2, 1, 16, 16)
    fast = lucid.optimize_for_inference(_tiny(), dtype=torch.int8, calibration=[x], calibration_batches=1, backend="onednn-lowered")
    first = fast(x)  # compiles (and prepacks) for this shape
    twin = copy.deepcopy(fast)
    assert twin.net._compiled == {} and len(fast.net._compiled) == 1
    assert torch.equal(twin(x), first)
