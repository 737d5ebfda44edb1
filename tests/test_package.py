"""The package surface: torch's tensor functions under lucid's name, lucid.nn, the seed example."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import torch
from torch import nn as torch_nn

import lucid
import lucid.nn as lnn

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name", ["zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "tensor", "zeros_like", "ones_like", "Tensor"]
)
def test_tensor_functions_are_torchs_own(name: str) -> None:
    assert getattr(lucid, name) is getattr(torch, name)


def test_lucid_tensors_are_torch_tensors() -> None:
    x = lucid.zeros(2, 3)
    assert type(x) is torch.Tensor and isinstance(x, lucid.Tensor)


def test_lucid_nn_offers_all_of_torch_nn() -> None:
    public = [n for n in dir(torch_nn) if not n.startswith("_") and isinstance(getattr(torch_nn, n), type)]
    assert len(public) > 100
    missing = [n for n in public if getattr(lnn, n, None) is not getattr(torch_nn, n)]
    assert missing == []
    assert lnn.functional is torch_nn.functional and lnn.init is torch_nn.init


def test_conv_bn_relu_matches_its_parts() -> None:
    block = lnn.ConvBNReLU2d(3, 6, 3, stride=2, padding=1, groups=3, conv_bias=True).eval()
    assert [n for n, _ in block.named_children()] == ["conv", "bn", "relu"]
    assert block.conv.groups == 3 and block.conv.stride == (2, 2) and block.conv.bias is not None
    block.bn.running_mean.uniform_(-1, 1)
    block.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 9, 9)
    expected = torch.relu(block.bn(block.conv(x)))
    torch.testing.assert_close(block(x), expected)
    assert block(x).shape == (2, 6, 5, 5)
    assert block(x).min() >= 0


def test_conv_bn_relu_has_no_conv_bias_by_default() -> None:
    assert lnn.ConvBNReLU2d(3, 4, 1).conv.bias is None


def test_drop_path_is_identity_in_eval_and_unbiased_in_train() -> None:
    dp = lnn.DropPath(0.25)
    x = torch.ones(20000, 1, 1, 1)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.75) < 0.02
    assert abs(y.mean().item() - 1.0) < 0.03  # survivors are rescaled by 1/(1-p)
    with pytest.raises(ValueError, match="p must be in"):
        lnn.DropPath(1.0)


def test_model_device_is_the_one_device_of_all_tensors() -> None:
    from lucid.core.errors import OptionError
    from lucid.nn.measure import model_device

    assert model_device(lnn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(lnn.ReLU()) == torch.device("cpu")  # no tensors: the CPU
    with torch.device("meta"):
        on_meta = lnn.BatchNorm1d(2)
    assert model_device(on_meta) == torch.device("meta")
    on_meta.running_mean = torch.zeros(2)  # one buffer elsewhere is enough to refuse
    with pytest.raises(OptionError, match=r"^to_onnx: the model's parameters and buffers must all be on one device, found \['cpu', 'meta'\]$"):
        model_device(on_meta, "to_onnx")


def test_seed_example_runs_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(ROOT / "examples" / "seed.py"), run_name="__main__")
    assert capsys.readouterr().out.strip() == "torch.Size([1, 10])"


def test_readme_carries_the_seed_example_and_its_real_output() -> None:
    readme = (ROOT / "README.md").read_text()
    seed_code = (ROOT / "examples" / "seed.py").read_text().split('"""', 2)[2].strip()
    assert seed_code in readme
    assert "torch.Size([1, 10])" in readme


def test_importing_the_models_stays_light() -> None:
    """`import lucid.models` pulls in none of the optional, heavy pieces (weights I/O, export, peers)."""
    import subprocess
    import sys

    heavy = ["lucid.weights", "lucid.export", "lucid.train", "safetensors", "onnx", "torchvision", "timm"]
    code = f"import sys, lucid.models; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
