"""Published-weights registry and the download -> verify -> convert -> load path, offline (file:// URLs)."""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import pytest
import torch

import lucid.models as models
from lucid.benchmark import randomize_batchnorm
from lucid.weights import CheckpointError, PretrainedWeights, cache_dir, convert, info, list_pretrained, register_pretrained
from lucid.weights import pretrained as pretrained_module

TINY = dict(channels=(8, 8, 16, 16))  # resnet_18's layout at a few kilobytes


def _publish(tmp_path: Path, content: bytes | None = None, tag: str = "TEST", default: bool = False) -> tuple[dict, PretrainedWeights]:
    """Write a torchvision-layout checkpoint of a tiny resnet_18 named like torchvision's files, and register it."""
    model = randomize_batchnorm(models.resnet_18(**TINY))
    source = tmp_path / "server" / "upload.pth"
    source.parent.mkdir(exist_ok=True)
    if content is None:
        torch.save(convert(model.state_dict(), "lucid", to="torchvision"), source)
    else:
        source.write_bytes(content)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    published = source.with_name(f"tiny18-{sha[:8]}.pth")
    source.rename(published)
    entry = PretrainedWeights(preset="resnet_18", tag=tag, url=published.as_uri(), sha256=sha[:8], top1=1.0, top5=5.0)
    register_pretrained(entry, default=default)
    return model.state_dict(), entry


def _same_weights(a: dict, b: dict, skip: tuple[str, ...] = ()) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if not k.startswith(skip))


# ------------------------------------------------------------------------------------- registry


def test_registry_matches_torchvision_published_facts() -> None:
    tv = pytest.importorskip("torchvision.models")
    enums = {
        "resnet_18": tv.ResNet18_Weights, "resnet_34": tv.ResNet34_Weights, "resnet_50": tv.ResNet50_Weights,
        "resnet_101": tv.ResNet101_Weights, "resnet_152": tv.ResNet152_Weights,
        "wide_resnet_50": tv.Wide_ResNet50_2_Weights, "wide_resnet_101": tv.Wide_ResNet101_2_Weights,
        "resnext_50_32x4d": tv.ResNeXt50_32X4D_Weights, "resnext_101_32x8d": tv.ResNeXt101_32X8D_Weights,
        "resnext_101_64x4d": tv.ResNeXt101_64X4D_Weights,
    }
    assert sorted(set(list_pretrained()) - {"resnext_101_32x32d"}) == sorted(enums)  # 32x32d: timm's weights only
    for preset, enum in enums.items():
        assert list_pretrained(preset)[0] == enum.DEFAULT.name
        assert sorted(t for t in list_pretrained(preset) if not t.startswith("timm:")) == sorted(w.name for w in enum)
        assert info(preset).tag == enum.DEFAULT.name
        for w in enum:
            entry = info(preset, w.name)
            metrics = w.meta["_metrics"]["ImageNet-1K"]
            preprocessing = w.transforms()
            assert entry.url == w.url and w.url.endswith(f"-{entry.sha256}.pth")
            assert (entry.top1, entry.top5) == (metrics["acc@1"], metrics["acc@5"])
            assert [entry.resize] == preprocessing.resize_size and [entry.crop] == preprocessing.crop_size
            assert list(entry.mean) == preprocessing.mean and list(entry.std) == preprocessing.std
            assert entry.interpolation == preprocessing.interpolation.value
            assert entry.num_classes == len(w.meta["categories"])


def test_transforms_match_torchvision_preprocessing() -> None:
    tv = pytest.importorskip("torchvision.models")
    image = torch.randint(0, 256, (3, 240, 320), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ours = info("resnet_50", "IMAGENET1K_V2").transforms()(image)
    theirs = tv.ResNet50_Weights.IMAGENET1K_V2.transforms()(image)
    assert ours.shape == theirs.shape == (3, 224, 224)
    one_level = 1.01 / 255 / min(info("resnet_50").std)  # their uint8 resize kernels round some pixels differently
    assert (ours - theirs).abs().max().item() < one_level


def test_tags_and_presets_are_checked() -> None:
    assert list_pretrained("resnext_101_32x4d") == []
    assert info("resnet_50", "imagenet1k_v1").tag == "IMAGENET1K_V1"
    assert info("resnet_50", "DEFAULT").tag == "IMAGENET1K_V2"
    with pytest.raises(ValueError, match="'V3' is not a tag of 'resnet_50'; its tags: IMAGENET1K_V2, IMAGENET1K_V1"):
        info("resnet_50", "V3")
    with pytest.raises(ValueError, match="no published weights for 'resnext_101_32x4d'"):
        models.resnext_101_32x4d(pretrained=True)
    with pytest.raises(TypeError, match="weights must be a tag name"):
        models.resnet_50(weights=True)
    with pytest.raises(ValueError, match="unknown model 'resnet_51'"):
        list_pretrained("resnet_51")
    with pytest.raises(ValueError, match="sha256 must be"):
        register_pretrained(dataclasses.replace(info("resnet_18"), sha256="xyz"))


def test_torchvision_weights_refuse_a_timm_style_architecture() -> None:
    with pytest.raises(ValueError, match="stem_type='deep'"):
        models.resnet_50(weights="IMAGENET1K_V1", stem_type="deep")


def test_cache_folder_follows_lucid_home_then_torch_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cache_dir() == tmp_path / "lucid-home" / "weights"
    monkeypatch.delenv("LUCID_HOME")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert cache_dir() == tmp_path / "torch" / "hub" / "checkpoints"


# ------------------------------------------------------------------------ download, verify, load


def test_preset_loads_published_weights_through_a_verified_download(tmp_path: Path) -> None:
    original, entry = _publish(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to adapt: no warning
        model = models.resnet_18(weights="test", **TINY)
    assert _same_weights(original, model.state_dict())
    cached = cache_dir() / entry.filename
    assert cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest().startswith(entry.sha256)
    # the cache is used from then on: the "server" copy is no longer needed
    Path(entry.url.removeprefix("file://")).unlink()
    assert _same_weights(original, models.resnet_18(weights="TEST", **TINY).state_dict())


def test_pretrained_true_loads_the_default_tag(tmp_path: Path) -> None:
    original, _ = _publish(tmp_path, default=True)
    assert _same_weights(original, models.resnet_18(pretrained=True, **TINY).state_dict())


def test_other_num_classes_keeps_backbone_and_warns(tmp_path: Path) -> None:
    original, _ = _publish(tmp_path)
    with pytest.warns(UserWarning, match="a classifier for 1000 classes and the model 10 classes; loaded the backbone and re-initialised fc"):
        model = models.resnet_18(weights="TEST", num_classes=10, **TINY)
    assert _same_weights(original, model.state_dict(), skip=("fc.",))
    assert model.fc.weight.shape == (10, 16) and model.fc.weight.std() > 0


def test_one_input_channel_sums_the_first_filters(tmp_path: Path) -> None:
    original, _ = _publish(tmp_path)
    with pytest.warns(UserWarning, match="3 input channels and the model 1"):
        model = models.resnet_18(weights="TEST", in_channels=1, **TINY)
    assert torch.allclose(model.stem[0].weight, original["stem.0.weight"].sum(1, keepdim=True))
    assert _same_weights(original, model.state_dict(), skip=("stem.0.",))


def test_load_checkpoint_fits_a_headless_six_channel_checkpoint() -> None:
    """timm's num_classes=0 checkpoints have no fc; other channel counts cycle the filters, keeping their sum."""
    from lucid.weights import load_checkpoint

    source = models.resnet_18(**TINY).state_dict()
    headless = {k: v for k, v in convert(source, "lucid", to="timm").items() if not k.startswith("fc.")}
    model = models.resnet_18(in_channels=6, num_classes=4, **TINY)
    with pytest.warns(UserWarning) as caught:
        load_checkpoint(model, headless)
    messages = " | ".join(str(w.message) for w in caught)
    assert "no classifier" in messages and "cycled and rescaled" in messages
    assert torch.allclose(model.stem[0].weight.sum(1), source["stem.0.weight"].sum(1), atol=1e-6)
    assert torch.equal(model.stem[0].weight[:, 3:], model.stem[0].weight[:, :3])
    assert _same_weights(source, model.state_dict(), skip=("fc.", "stem.0."))


def test_hash_mismatch_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    _, entry = _publish(tmp_path)
    register_pretrained(dataclasses.replace(entry, tag="BAD", sha256="00000000"))
    with pytest.raises(CheckpointError, match=r"failed its SHA-256 check and was discarded"):
        models.resnet_18(weights="BAD", **TINY)
    assert not cache_dir().exists() or list(cache_dir().iterdir()) == []


def test_corrupt_download_with_matching_hash_is_refused(tmp_path: Path) -> None:
    _, entry = _publish(tmp_path, content=b"<html>503 Service Unavailable</html>")
    with pytest.raises(CheckpointError, match=f"{entry.filename}: not a"):
        models.resnet_18(weights="TEST", **TINY)


def test_corrupted_cache_file_is_refused(tmp_path: Path) -> None:
    _, entry = _publish(tmp_path)
    models.resnet_18(weights="TEST", **TINY)
    cached = cache_dir() / entry.filename
    cached.write_bytes(cached.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="does not start with .*delete the file"):
        models.resnet_18(weights="TEST", **TINY)


def test_offline_error_names_the_url_and_where_to_put_the_file(tmp_path: Path) -> None:
    unreachable = (tmp_path / "offline" / "resnet18-f37072fd.pth").as_uri()
    model = models.resnet_18()
    with pytest.raises(CheckpointError) as err:
        pretrained_module.load_pretrained(model, "resnet_18", None, url=unreachable, progress=False)
    text = str(err.value)
    assert unreachable in text
    assert str(cache_dir() / "resnet18-f37072fd.pth") in text and "f37072fd" in text


def test_cli_download_prints_the_verified_cache_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lucid.cli import main

    _, entry = _publish(tmp_path)
    assert main(["weights", "download", "resnet_18", "--tag", "TEST"]) == 0
    cached = Path(capsys.readouterr().out.strip())
    assert cached == cache_dir() / entry.filename
    assert cached.read_bytes() == Path(entry.url.removeprefix("file://")).read_bytes()
