"""Safe weight files: save_pretrained/from_pretrained round trips and refusal of bad files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import lucid.models as models
from lucid.benchmark import randomize_batchnorm
from lucid.models import BasicBlock
from lucid.weights import CheckpointError, load_file, load_into, save_file


def _realistic(model: nn.Module) -> nn.Module:
    randomize_batchnorm(model)  # non-default statistics, so that a lost buffer would show
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked.fill_(7)
    return model.eval()


def _tiny_resnext() -> models.ResNeXt:
    return _realistic(models.ResNeXt(models.ResNeXtConfig(
        layers=[1, 2, 1, 1], cardinality=4, base_width=32, channels=(8, 8, 16, 16), num_classes=5, in_channels=2,
        stem_type="deep", stem_width=8, avg_down=True, block_args={"se": True, "se_args": {"reduction": 4}, "drop_path": 0.1})))


def _tiny_resnet() -> models.ResNet:
    return _realistic(models.resnet_18(num_classes=5, in_channels=2, channels=(8, 8, 16, 16), zero_init_residual=True))


@pytest.mark.parametrize("build", [_tiny_resnext, _tiny_resnet], ids=["resnext-deep-avgdown-se", "resnet18-tiny"])
def test_save_pretrained_from_pretrained_is_exact(tmp_path: Path, build) -> None:
    model = build()
    model.save_pretrained(tmp_path / "m", metadata={"class_names": list("abcde")})
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        want = model(x)
    for where in (tmp_path / "m", tmp_path / "m" / "model.safetensors", tmp_path / "m" / "config.json"):
        again = models.from_pretrained(where).eval()
        assert type(again) is type(model)
        assert again.config == model.config
        assert again.metadata == {"class_names": list("abcde")}
        sd, sd2 = model.state_dict(), again.state_dict()
        assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) and sd[k].dtype == sd2[k].dtype for k in sd)
        with torch.no_grad():
            assert torch.equal(again(x), want)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]  # no temp files left


def test_from_pretrained_lists_a_config_weights_mismatch(tmp_path: Path) -> None:
    _tiny_resnet().save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["num_classes"] = 7
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"shape differences \(2\):\n    fc.bias: checkpoint \(5,\) vs model \(7,\)"):
        models.from_pretrained(tmp_path / "m")


def test_custom_block_class_is_refused_by_save_pretrained(tmp_path: Path) -> None:
    class MyBlock(BasicBlock):
        pass

    model = models.ResNet(models.ResNetConfig(block=MyBlock, layers=[1, 1, 1, 1], channels=(8, 8, 8, 8)))
    with pytest.raises(TypeError, match="custom block class .*MyBlock"):
        model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "config.json").exists()


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    _tiny_resnext().save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated or corrupt"):
        models.from_pretrained(tmp_path / "m")


class _Payload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("nest", [False, True], ids=["top-level", "beside-state-dict"])
def test_pickled_code_is_refused_and_never_runs(tmp_path: Path, nest: bool) -> None:
    marker = tmp_path / "MARKER"
    payload = _Payload(marker)
    obj = {"state_dict": {"fc.weight": torch.zeros(2, 2)}, "extra": payload} if nest else payload
    path = tmp_path / "evil.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth: refused.*system.*nothing in it was executed"):
        load_file(path)
    from lucid.weights import load_checkpoint

    with pytest.raises(CheckpointError):
        load_checkpoint(models.resnet_18(), path)
    assert not marker.exists()


def test_torch_files_are_unwrapped(tmp_path: Path) -> None:
    sd = {"a.weight": torch.randn(3), "b.bias": torch.randn(2)}
    cases = {
        "plain.pth": sd,
        "lightning.ckpt": {"state_dict": sd, "epoch": 3, "lr": 0.1},
        "train.pt": {"model": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {"step": 10}},
        "other.bin": {"model_state_dict": sd},
        "compiled.pth": {f"_orig_mod.{k}": v for k, v in sd.items()},
        "ddp-compiled.pth": {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        got = load_file(tmp_path / name)
        assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd), name


def test_save_file_format_follows_the_name(tmp_path: Path) -> None:
    from safetensors.torch import load_file as safetensors_load

    sd = {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor(3)}
    assert torch.equal(safetensors_load(str(save_file(sd, tmp_path / "a.safetensors")))["w"], sd["w"])
    assert torch.equal(torch.load(save_file(sd, tmp_path / "a.pth"), weights_only=True)["w"], sd["w"])
    for name in ("a.safetensors", "a.pth"):
        got = load_file(tmp_path / name)
        assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd)


def test_safetensors_content_is_recognised_under_any_name(tmp_path: Path) -> None:
    from safetensors.torch import save_file as safetensors_save

    sd = {"w": torch.arange(6.0).reshape(2, 3)}
    safetensors_save(sd, str(tmp_path / "pytorch_model.bin"))
    assert torch.equal(load_file(tmp_path / "pytorch_model.bin")["w"], sd["w"])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.pth", b"", "empty"),
        ("garbage.pth", bytes(range(256)) * 4, "garbage.pth: not a"),
        ("garbage.safetensors", b"\x00" * 100, "garbage.safetensors: not a readable safetensors"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_file(tmp_path / name)


def test_truncated_torch_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.randn(100, 100)}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"cut\.pth: not a readable torch checkpoint, it may be truncated"):
        load_file(path)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_file(tmp_path / "nope.pth")
    torch.save({"w": torch.zeros(1), "note": "not a tensor"}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        load_file(tmp_path / "mixed.pth")


def test_load_into_lists_mismatches_readably() -> None:
    model = models.resnet_18(num_classes=10)
    sd = models.resnet_18().state_dict()
    sd.pop("layer1.0.conv1.bn.running_var")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_into(model, sd)
    text = str(info.value)
    assert "missing from the checkpoint (1):\n    layer1.0.conv1.bn.running_var" in text
    assert "in the checkpoint but not in the model (1):\n    extra.weight" in text
    assert "fc.weight: checkpoint (1000, 512) vs model (10, 512)" in text
    assert len(text.splitlines()) < 12  # a summary, not torch's wall of text
