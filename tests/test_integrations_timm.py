"""lucid presets by name in timm (lucid.integrations.timm), and what pretrained_cfg describes without weights."""
from __future__ import annotations

import hashlib
import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from lucid import models
from lucid.core.errors import ConfigTypeError, MissingDependencyError, OptionError
from lucid.models.presets import PRESETS
from lucid.weights import PretrainedWeights, convert, register_pretrained

timm = pytest.importorskip("timm")
from timm.data import create_dataset, create_loader, resolve_data_config  # noqa: E402
from timm.utils import accuracy  # noqa: E402

from lucid.integrations.timm import register  # noqa: E402

SMALL = dict(channels=(8, 8, 16, 16))  # resnet_18's layout at a few kilobytes


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    register()


def _on_meta(name: str, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


def test_every_preset_is_registered_with_its_published_tags() -> None:
    names = register()  # a second call changes nothing and warns of no overwrite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert register() == names
    assert names == [f"lucid_{p}" for p in PRESETS]
    assert set(timm.list_models("lucid_*")) == set(names)
    tagged = timm.list_models("lucid_resnet_50*", pretrained=True)
    assert tagged == ["lucid_resnet_50.imagenet1k_v1", "lucid_resnet_50.imagenet1k_v2"]
    assert timm.models.get_pretrained_cfg("lucid_resnet_50").tag == "imagenet1k_v2"  # the default comes first
    assert not timm.list_models("lucid_resnet_200*", pretrained=True)


@pytest.mark.parametrize(("ours", "theirs", "test_size"), [
    ("lucid_resnet_50", "resnet50.tv2_in1k", True),  # timm trains these at 176 and evaluates at 224
    ("lucid_resnet_50.imagenet1k_v1", "resnet50.tv_in1k", True),
    ("lucid_resnext_50_32x4d.timm_resnext50_32x4d_a1h_in1k", "resnext50_32x4d.a1h_in1k", False),  # lucid lists its 224 px figures
])
def test_data_config_equals_timms_for_the_same_weights(ours: str, theirs: str, test_size: bool) -> None:
    expected = resolve_data_config({}, model=_on_meta(theirs), use_test_size=test_size)
    cfg = timm.models.get_pretrained_cfg(ours).to_dict()
    _assert_same_transform(resolve_data_config({}, pretrained_cfg=cfg, use_test_size=test_size), expected)
    if "." not in ours:  # the model itself, built without weights, describes its default weights
        _assert_same_transform(resolve_data_config({}, model=_on_meta(ours), use_test_size=test_size), expected)


def _assert_same_transform(got: dict, expected: dict) -> None:
    """Equal data configs, crop_pct compared by the resize it gives (timm publishes 0.965 for 224/232)."""
    size = expected["input_size"][-1]
    assert math.floor(size / got["crop_pct"]) == math.floor(size / expected["crop_pct"])
    assert {**got, "crop_pct": None} == {**expected, "crop_pct": None}


def test_pretrained_cfg_without_weights_describes_the_default_weights() -> None:
    torchvision = pytest.importorskip("torchvision")
    checked = 0
    for name, preset in PRESETS.items():
        with torch.device("meta"):
            model = models.create_model(name)
        data = resolve_data_config({}, model=model)
        if preset.torchvision and preset.weights and preset.weights[-1].layout == "torchvision":
            default = torchvision.models.get_model_weights(preset.torchvision).DEFAULT.transforms()
            assert data["crop_pct"] == pytest.approx(default.crop_size[0] / default.resize_size[0]), name
            assert data["input_size"] == (3, *default.crop_size * 2)[:3], name
            assert data["interpolation"] == default.interpolation.value and data["mean"] == tuple(default.mean), name
            assert model.pretrained_cfg["tag"] == preset.weights[-1].tag
            checked += 1
        elif not preset.weights:  # no published weights: lucid's own evaluation transform
            assert data["crop_pct"] == 0.875 and model.pretrained_cfg["tag"] is None, name
    assert checked >= 8
    model = models.create_model("resnet_18", **SMALL)
    model.metadata = {"preprocessing": {"image_size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.2] * 3, "crop": 1.0}}
    assert resolve_data_config({}, model=model)["input_size"] == (3, 64, 64)  # a training run's metadata wins
    assert model.pretrained_cfg["tag"] is None


def test_timm_keyword_arguments() -> None:
    model = timm.create_model(
        "lucid_resnet_18", num_classes=3, in_chans=1, drop_rate=0.0, drop_path_rate=0.1, global_pool="max",
        pretrained_cfg_overlay=dict(crop_pct=1.0), **SMALL,
    )
    assert isinstance(model, models.ResNet) and model.config.in_channels == 1 and model.num_classes == 3
    assert isinstance(model.avgpool, torch.nn.AdaptiveMaxPool2d)
    assert {b.drop_path.p for b in model.modules() if isinstance(b, models.BasicBlock)} == {0.1}
    assert model.eval()(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    assert resolve_data_config({}, model=model)["crop_pct"] == 1.0
    headless = timm.create_model("lucid_resnet_18", num_classes=0, global_pool="", **SMALL)
    assert headless(torch.randn(1, 3, 64, 64)).shape == (1, 16, 2, 2)
    with pytest.raises(OptionError, match=r"drop_rate=0.2: lucid's classifier has no dropout"):
        timm.create_model("lucid_resnet_18", drop_rate=0.2, **SMALL)
    with pytest.raises(OptionError, match=r"global_pool='catavgmax'"):
        timm.create_model("lucid_resnet_18", global_pool="catavgmax", **SMALL)
    with pytest.raises(ConfigTypeError, match=r"unexpected argument\(s\) \['bn_eps'\]"):
        timm.create_model("lucid_resnet_18", bn_eps=1e-3, **SMALL)


def test_features_only_matches_timms_resnet() -> None:
    ours, theirs = _on_meta("lucid_resnet_50", features_only=True), _on_meta("resnet50", features_only=True)
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    small = timm.create_model("lucid_resnet_18", features_only=True, out_indices=(2, 4), **SMALL)
    assert [f.shape for f in small(torch.randn(1, 3, 64, 64))] == [(1, 8, 8, 8), (1, 16, 2, 2)]


def _published_tiny_resnet_18(tmp_path: Path) -> dict[str, torch.Tensor]:
    """A tiny resnet_18 checkpoint in torchvision's layout, registered (file://) as resnet_18's default weights."""
    model = models.resnet_18(**SMALL)
    path = tmp_path / "tiny.pth"
    torch.save(convert(model.state_dict(), "lucid", to="torchvision"), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    published = path.rename(tmp_path / f"tiny18-{sha[:8]}.pth")
    register_pretrained(PretrainedWeights(preset="resnet_18", tag="TINY", url=published.as_uri(), sha256=sha[:8]), default=True)
    return model.state_dict()


def test_pretrained_downloads_into_cache_dir_and_loads(tmp_path: Path) -> None:
    expected = _published_tiny_resnet_18(tmp_path)
    model = timm.create_model("lucid_resnet_18", pretrained=True, cache_dir=tmp_path / "cache", **SMALL)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert list((tmp_path / "cache" / "weights").glob("tiny18-*.pth"))
    assert model.pretrained_cfg["tag"] == "TINY"
    file = tmp_path / "mine.safetensors"
    models.resnet_18(**SMALL).save_pretrained(tmp_path / "mine")
    (tmp_path / "mine" / "model.safetensors").rename(file)
    local = timm.create_model("lucid_resnet_18", pretrained=True, pretrained_cfg_overlay=dict(file=str(file)), **SMALL)
    assert not torch.equal(local.fc.weight, model.fc.weight)


def test_timm_evaluation_pipeline_on_an_image_folder(tmp_path: Path) -> None:
    """What timm's validate.py does with --model lucid_...: create_model, resolve_data_config, create_dataset,
    create_loader, accuracy."""
    for c, name in enumerate(("dark", "light")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 48), (20 + 200 * c, 10 * i, 30)).save(tmp_path / name / f"{i}.png")
    model = timm.create_model("lucid_resnet_18", num_classes=2, pretrained_cfg_overlay=dict(input_size=(3, 32, 32), crop_pct=1.0), **SMALL).eval()
    config = resolve_data_config({}, model=model)
    assert config["input_size"] == (3, 32, 32) and config["interpolation"] == "bilinear"
    dataset = create_dataset("", root=str(tmp_path))
    loader = create_loader(dataset, batch_size=4, use_prefetcher=False, num_workers=0, **config)
    seen = 0
    with torch.no_grad():
        for images, targets in loader:
            logits = model(images)
            (acc,) = accuracy(logits, targets, topk=(1,))
            assert acc.item() == pytest.approx(100.0 * (logits.argmax(1) == targets).float().mean().item())
            seen += len(targets)
            assert images.shape[1:] == (3, 32, 32)
            # solid images: every pixel's red is the class colour, normalised with the model's mean/std
            red = ((20 + 200 * targets.float()) / 255 - 0.485) / 0.229
            torch.testing.assert_close(images[:, 0], red[:, None, None].expand(-1, 32, 32), atol=1e-5, rtol=0)
    assert seen == 6


def test_missing_timm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now fails as if not installed
    with pytest.raises(MissingDependencyError, match=r'lucid.integrations.timm.register\(\) needs .*pip install "lucid\[timm\]"'):
        register()
