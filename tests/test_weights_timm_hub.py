"""timm's weights on the Hugging Face Hub by name: registry rows checked against timm's own
pretrained configs, download through a Hub stub on 127.0.0.1, verification, conversion, and
offline use from the cache."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
from hub_stub import HubStub

from lucid import models, weights
from lucid.cli import main
from lucid.weights import CheckpointError, PretrainedWeights, register_pretrained

timm = pytest.importorskip("timm")
huggingface_hub = pytest.importorskip("huggingface_hub")

PUBLISHED = {  # timm's ImageNet results table, top-1 at 224
    ("resnext_50_32x4d", "resnext50_32x4d.a1h_in1k"): 81.14,
    ("resnext_50_32x4d", "resnext50_32x4d.fb_swsl_ig1b_ft_in1k"): 82.16,
    ("resnext_101_32x32d", "resnext101_32x32d.fb_wsl_ig1b_ft_in1k"): 85.09,
}


@pytest.mark.parametrize(("preset", "name"), sorted(PUBLISHED))
def test_rows_carry_timms_preprocessing(preset: str, name: str) -> None:
    entry = weights.info(preset, f"timm:{name}")
    cfg = timm.models.get_pretrained_cfg(name)
    assert entry.hf_hub_id == cfg.hf_hub_id and entry.layout == "timm" and entry.top1 == PUBLISHED[(preset, name)]
    assert entry.interpolation == cfg.interpolation and entry.crop == cfg.input_size[-1]
    assert entry.resize == int(cfg.input_size[-1] / cfg.crop_pct)  # timm's eval transform: floor(size / crop_pct)
    assert tuple(entry.mean) == tuple(cfg.mean) and tuple(entry.std) == tuple(cfg.std) and entry.license == cfg.license
    # the weights' architecture is the preset's: same parameter count as timm's model
    with torch.device("meta"):
        ours = sum(p.numel() for p in models.create_model(preset).parameters())
        theirs = sum(p.numel() for p in timm.create_model(name.split(".")[0], pretrained=False).parameters())
    assert ours == theirs


@pytest.fixture
def timm_on_hub(tmp_path: Path):
    """A Hub stub holding timm/resnet18.test: timm's resnet18 with random weights, as timm publishes files."""
    from safetensors.torch import save_file

    source = timm.create_model("resnet18", pretrained=False).eval()
    file = tmp_path / "model.safetensors"
    save_file(source.state_dict(), str(file))
    entry = register_pretrained(PretrainedWeights(
        preset="resnet_18", tag="timm:resnet18.test", url="https://huggingface.co/timm/resnet18.test", sha256="",
        layout="timm", hf_hub_id="timm/resnet18.test", interpolation="bicubic", resize=235, top1=71.0,
    ))
    with HubStub() as hub:
        hub.repos["timm/resnet18.test"] = {"model.safetensors": file.read_bytes(), "config.json": b"{}"}
        hub.commits["timm/resnet18.test"] = "a" * 40
        yield hub, source, entry


def test_download_verify_convert_and_use_offline(timm_on_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, source, entry = timm_on_hub
    path = weights.download("resnet_18", "timm:resnet18.test", url=hub.endpoint)
    assert Path(os.path.realpath(path)).name == hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(weights.hub_cache_dir()) in str(path) and not hub.unknown
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # from here on no request can leave
    model = models.create_model("resnet_18", weights="timm:resnet18.test").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))
    assert model.metadata["weights"] == entry.to_metadata()
    assert model.pretrained_cfg["interpolation"] == "bicubic" and model.pretrained_cfg["crop_pct"] == 224 / 235


def test_a_changed_file_is_refused(timm_on_hub) -> None:
    hub, _, _ = timm_on_hub
    path = weights.download("resnet_18", "timm:resnet18.test", url=hub.endpoint)
    blob = Path(os.path.realpath(path))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is not the published .* of timm/resnet18.test/model.safetensors"):
        weights.download("resnet_18", "timm:resnet18.test", url=hub.endpoint)


def test_unreachable_hub_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="could not download timm/resnext50_32x4d.a1h_in1k/model.safetensors"):
        weights.download("resnext_50_32x4d", "timm:resnext50_32x4d.a1h_in1k")


def test_cli_lists_and_downloads_hub_weights(timm_on_hub, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, _, _ = timm_on_hub
    assert main(["weights", "list", "resnext_50_32x4d"]) == 0
    rows = {line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["timm:resnext50_32x4d.a1h_in1k"][2:6] == ["81.14", "-", "235/224", "bicubic"]
    weights.download("resnet_18", "timm:resnet18.test", url=hub.endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["weights", "download", "resnet_18", "--tag", "timm:resnet18.test"]) == 0
    assert capsys.readouterr().out.strip().endswith("model.safetensors")
