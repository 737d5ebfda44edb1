"""optimize_for_inference(backend="openvino"): OpenVINO's runtime (int8 through NNCF) behind lucid's outputs contract."""
from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import lucid
from lucid.core.errors import MissingDependencyError
from lucid.data.folder import digits_splits
from lucid.models import ResNeXt, ResNeXtConfig
from lucid.optimize import RUNTIME_BACKENDS, backends_for
from lucid.optimize.openvino import to_openvino

SMALL = dict(cardinality=4, base_width=8, layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], num_classes=10, in_channels=1, stem_width=16)


def test_openvino_is_a_cpu_backend_for_every_cpu_dtype() -> None:
    for dtype in (torch.float32, torch.bfloat16, torch.int8):
        assert set(RUNTIME_BACKENDS) <= set(backends_for("cpu", dtype))
    assert "openvino" not in backends_for("cuda", torch.float16)


def test_missing_openvino_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails as if not installed
    model = ResNeXt(ResNeXtConfig(**SMALL)).eval()
    with pytest.raises(MissingDependencyError, match=r'pip install "lucid\[openvino\]"'):
        lucid.optimize_for_inference(model, backend="openvino")


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small ResNeXt trained for a few seconds on the bundled digits at 16x16: (model, train images, val images, val labels)."""
    torch.manual_seed(0)
    train, val, _, _ = digits_splits(image_size=16, val_fraction=0.2, seed=0, augment=False)
    model = ResNeXt(ResNeXtConfig(**SMALL))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(4):
        for idx in torch.randperm(len(train.targets), generator=torch.Generator().manual_seed(0)).split(64):
            loss = nn.functional.cross_entropy(model(train.images[idx]), train.targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), train.images, val.images, val.targets


def _error(model: nn.Module, x: object) -> tuple[type, str]:
    with pytest.raises((TypeError, ValueError)) as info:
        model(x)
    return type(info.value), str(info.value)


@pytest.mark.slow
def test_float_backends_give_the_models_logits(trained) -> None:
    model, _, val_images, _ = trained
    with torch.no_grad():
        ref = model(val_images)
    fp32 = lucid.optimize_for_inference(model, backend="openvino")
    out = fp32(val_images)
    assert fp32.backend == "openvino" and out.dtype == torch.float32 and out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4 * ref.abs().max().item())
    torch.testing.assert_close(fp32(val_images[:3]), ref[:3], rtol=0, atol=1e-4 * ref.abs().max().item())  # a second shape
    bf16 = lucid.optimize_for_inference(model, dtype=torch.bfloat16, backend="openvino")
    torch.testing.assert_close(bf16(val_images).float(), ref, rtol=0, atol=0.05 * ref.abs().max().item())
    default = lucid.optimize_for_inference(model, backend="eager")
    for bad in (torch.randn(2, 3, 16, 16), torch.randn(16, 16), "images"):
        assert _error(fp32, bad) == _error(default, bad)  # lucid's own refusal, whatever runs the model
    with pytest.raises(RuntimeError, match="inference-only"):
        fp32.train()


@pytest.mark.slow
def test_int8_through_nncf_keeps_accuracy(trained) -> None:
    model, train_images, val_images, val_labels = trained
    calibration = list(train_images.split(64))[:8]
    with torch.no_grad():
        ref = model(val_images)
    acc_fp32 = (ref.argmax(1) == val_labels).float().mean().item()
    assert acc_fp32 > 0.85  # the model really learned, so agreement below means something
    fast = lucid.optimize_for_inference(model, dtype=torch.int8, backend="openvino", calibration=calibration)
    out = fast(val_images)
    assert fast.dtype == torch.int8 and out.dtype == torch.float32 and out.shape == ref.shape
    acc_int8 = (out.argmax(1) == val_labels).float().mean().item()
    agreement = (out.argmax(1) == ref.argmax(1)).float().mean().item()
    # per-tensor int8 activations cost this 8-channel, 16-pixel model more than a full-size one
    assert abs(acc_int8 - acc_fp32) <= 0.03 and agreement >= 0.94, (acc_fp32, acc_int8, agreement)
    rel = ((out - ref).abs().mean() / ref.abs().mean()).item()
    assert 1e-3 < rel < 0.2, rel  # quantization error is present (it really is int8) but small on average
    ops = {op.get_type_name() for op in to_openvino(model, val_images[:1], calibration=calibration[:1]).get_ops()}
    assert "FakeQuantize" in ops  # NNCF's int8 quantizers, which OpenVINO's CPU plugin runs as int8 kernels
