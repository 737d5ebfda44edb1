"""Model folders other libraries can tell apart and read: model card, safetensors metadata,
huggingface_hub's mixin, the Hub (a stub server on 127.0.0.1), and transformers' refusal."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import TINY
from hub_stub import HubStub

from lucid import weights
from lucid.models import ResNet, ResNetConfig, ResNeXt, ResNeXtConfig, create_model, from_pretrained
from lucid.models.saving import model_card

huggingface_hub = pytest.importorskip("huggingface_hub")


def _tiny(**kwargs) -> ResNeXt:
    return ResNeXt(ResNeXtConfig(cardinality=4, base_width=32, num_classes=5, **TINY, **kwargs)).eval()


class HubResNeXt(ResNeXt, huggingface_hub.PyTorchModelHubMixin, library_name="lucid"):
    """How a user gives a lucid class huggingface_hub's save/load/push methods."""


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


def test_model_card_and_safetensors_metadata(tmp_path: Path) -> None:
    from safetensors import safe_open

    model = _tiny()
    model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    front = card.split("---")[1]
    assert "library_name: lucid" in front and "pipeline_tag: image-classification" in front
    params = sum(p.numel() for p in model.parameters())
    assert f"Parameters: {params:,}" in card
    assert re.search(r"^- MACs at 224x224: \d+\.\d\d G$", card, re.MULTILINE)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt"
    assert json.loads(meta["lucid.config"]) == json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "README.md").write_text("my own card\n")
    model.save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "my own card\n"


def test_model_card_macs_are_torchvisions_published_figure() -> None:
    """ResNet-50's card gives the multiply-accumulates torchvision publishes for it (its "GFLOPS" count multiply-adds)."""
    with torch.device("meta"):
        model = create_model("resnet_50")
    published = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["_ops"]
    assert f"- MACs at 224x224: {published:.2f} G\n" in model_card(model)


def test_model_card_names_the_weights(tmp_path: Path) -> None:
    entry = weights.info("resnext_50_32x4d", "IMAGENET1K_V2")
    model = _tiny()
    model.save_pretrained(tmp_path, metadata={"weights": entry.to_metadata()})
    card = (tmp_path / "README.md").read_text()
    assert f"top-1 {entry.top1}%" in card and f"top-5 {entry.top5}%" in card
    assert f"resize {entry.resize} (bilinear), centre crop {entry.crop}" in card
    assert entry.url in card
    assert from_pretrained(tmp_path).metadata["weights"]["top1"] == entry.top1


def test_reads_a_pytorch_model_hub_mixin_folder(tmp_path: Path) -> None:
    model = HubResNeXt(ResNeXtConfig(cardinality=4, base_width=32, num_classes=5, **TINY))
    huggingface_hub.PyTorchModelHubMixin.save_pretrained(model, tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert "model_type" not in written  # the mixin writes the dataclass fields only
    loaded = from_pretrained(tmp_path)
    assert type(loaded) is ResNeXt and loaded.config == model.config
    _same(loaded, model)


def test_the_mixin_reads_a_lucid_folder(tmp_path: Path) -> None:
    model = _tiny()
    model.save_pretrained(tmp_path, metadata={"class_names": list("abcde")})
    loaded = HubResNeXt.from_pretrained(tmp_path)
    assert loaded.config == model.config
    _same(loaded, model)


def test_transformers_refuses_a_lucid_folder(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    # a ResNet folder once said model_type "resnet", which transformers built as its own ResNet-50
    ResNet(ResNetConfig(block="basic", num_classes=5, **TINY)).save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["library_name"] == "lucid" and written["model_type"] == "lucid.resnet"
    with pytest.raises(ValueError, match="lucid.resnet"):
        transformers.AutoModelForImageClassification.from_pretrained(str(tmp_path))
    # the refusal is the namespace's doing: the same folder under the old model_type is taken
    (tmp_path / "config.json").write_text(json.dumps({**written, "model_type": "resnet"}))
    built = transformers.AutoModelForImageClassification.from_pretrained(str(tmp_path))
    assert type(built).__name__ == "ResNetForImageClassification"


def test_push_to_hub_and_back(tmp_path: Path) -> None:
    model = _tiny()
    cache = tmp_path / "hf-cache"
    with HubStub() as hub:
        commit = model.push_to_hub("user/tiny", endpoint=hub.endpoint, token="test-token")
        assert sorted(hub.repos["user/tiny"]) == ["README.md", "config.json", "model.safetensors"]
        assert hub.card_metadata[0]["library_name"] == "lucid"  # the server parsed the card's front matter
        assert commit.oid == hub.commits["user/tiny"]
        pulled = from_pretrained("user/tiny", cache_dir=str(cache), endpoint=hub.endpoint)
        assert not hub.unknown, hub.unknown
    _same(pulled, model)
    # the snapshot stays in the cache: readable with the server gone
    _same(from_pretrained("user/tiny", cache_dir=str(cache), local_files_only=True), model)


def test_hub_ids_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="user/absent: not a local folder, and the Hub repository could not be read"):
        from_pretrained("user/absent", cache_dir=str(tmp_path), local_files_only=True)
    with pytest.raises(FileNotFoundError, match="no such folder, and not a Hub repository id"):
        from_pretrained(str(tmp_path / "a" / "b"))
