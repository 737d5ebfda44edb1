"""Weights of a non-floating dtype are refused for floating parameters instead of being cast (to zeros, or dropping
the imaginary part)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lucid.cli import main
from lucid.core.errors import CheckpointError
from lucid.io import load_file, load_into, save_file
from lucid.models import ResNet, ResNetConfig

SMALL = dict(block="basic", layers=(1, 1, 1, 1), channels=(4, 8, 8, 8), num_classes=3)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool, torch.complex64])
def test_a_non_floating_tensor_in_a_floating_parameter_is_refused(dtype: torch.dtype) -> None:
    model = ResNet(ResNetConfig(**SMALL))
    state = model.state_dict()
    state["fc.weight"] = state["fc.weight"].to(dtype)
    before = model.fc.weight.detach().clone()
    with pytest.raises(CheckpointError, match=rf"fc.weight: {dtype}"):
        load_into(model, state)
    assert torch.equal(model.fc.weight, before)  # nothing was loaded


def test_other_floating_dtypes_and_integer_buffers_still_load() -> None:
    model = ResNet(ResNetConfig(**SMALL))
    state = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    load_into(model, state)  # num_batches_tracked (int64) stays an int64 buffer
    assert torch.equal(model.fc.weight, state["fc.weight"].float())


def test_predict_with_int64_weights_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = ResNet(ResNetConfig(**SMALL))
    model.save_pretrained(tmp_path / "run")
    weights = load_file(tmp_path / "run" / "model.safetensors")
    weights["fc.weight"] = (weights["fc.weight"] * 100).to(torch.int64)
    save_file(weights, tmp_path / "run" / "model.safetensors")
    assert main(["eval", str(tmp_path / "run"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fc.weight: torch.int64" in err, err


def test_values_that_are_not_tensors_are_refused() -> None:
    model = ResNet(ResNetConfig(**SMALL))
    state = model.state_dict()
    state["fc.weight"] = [1, 2]
    state["fc.bias"] = "abc"
    with pytest.raises(CheckpointError, match=r"not tensors: fc.bias: str fc.weight: list"):
        load_into(model, state)
    with pytest.raises(CheckpointError, match="mapping of parameter names to tensors; got list"):
        load_into(model, [1, 2])
