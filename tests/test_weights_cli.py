"""`lucid weights`: list, convert and import checkpoints from the command line (download: test_weights_pretrained)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import lucid.models as models
from lucid.benchmark import randomize_batchnorm
from lucid.cli import main
from lucid.weights import convert, load_file, save_file

TINY = ["--set", "channels=8,8,16,16"]


def _tiny_state_dict(**overrides) -> dict[str, torch.Tensor]:
    return randomize_batchnorm(models.resnet_18(channels=(8, 8, 16, 16), **overrides)).state_dict()


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_list_shows_tags_accuracy_and_preprocessing(capsys: pytest.CaptureFixture) -> None:
    assert main(["weights", "list", "resnet_50"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split() == ["resnet_50", "IMAGENET1K_V2", "80.86", "95.43", "232/224", "bilinear", "resnet50-11ad3fa6.pth"]
    assert rows[2].split()[:2] == ["resnet_50", "IMAGENET1K_V1"] and len(rows) == 3
    assert main(["weights", "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 17 + 3  # header + every published tag (torchvision's, timm's)


def test_convert_timm_file_to_lucid_and_lucid_to_torchvision(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lucid_sd = _tiny_state_dict(stem_type="deep", stem_width=8, avg_down=True)
    torch.save(convert(lucid_sd, "lucid", to="timm"), tmp_path / "timm.pth")
    assert main(["weights", "convert", str(tmp_path / "timm.pth"), str(tmp_path / "lucid.safetensors")]) == 0
    assert _equal(load_file(tmp_path / "lucid.safetensors"), lucid_sd)

    plain = _tiny_state_dict()
    save_file(plain, tmp_path / "plain.safetensors")
    assert main(["weights", "convert", str(tmp_path / "plain.safetensors"), str(tmp_path / "tv.pth"), "--to", "torchvision"]) == 0
    assert _equal(torch.load(tmp_path / "tv.pth", weights_only=True), convert(plain, "lucid", to="torchvision"))

    capsys.readouterr()
    assert main(["weights", "convert", str(tmp_path / "lucid.safetensors"), str(tmp_path / "x.pth"), "--to", "torchvision"]) == 2
    assert "to='timm'" in capsys.readouterr().err


def test_import_writes_a_folder_the_other_commands_accept(tmp_path: Path) -> None:
    lucid_sd = _tiny_state_dict()
    torch.save({"state_dict": convert(lucid_sd, "lucid", to="torchvision")}, tmp_path / "ckpt.pth")
    assert main(["weights", "import", str(tmp_path / "ckpt.pth"), "--model", "resnet_18", *TINY, "--out", str(tmp_path / "m")]) == 0
    model = models.from_pretrained(tmp_path / "m")
    assert model.config.channels == (8, 8, 16, 16)
    assert _equal(model.state_dict(), lucid_sd)
