"""timm's model protocol, exercised with timm's own tools and checked against timm's ResNet."""
from __future__ import annotations

import copy

import pytest
import torch
from conftest import TINY

from lucid import models, weights
from lucid.models import ResNeXt, ResNeXtConfig

timm = pytest.importorskip("timm")
from timm.data import create_transform, resolve_data_config  # noqa: E402
from timm.models._features import FeatureGetterNet, FeatureListNet  # noqa: E402
from timm.optim import create_optimizer_v2  # noqa: E402


def _tiny(num_classes: int = 5) -> ResNeXt:
    return ResNeXt(ResNeXtConfig(cardinality=4, base_width=32, num_classes=num_classes, **TINY)).eval()


@pytest.fixture(scope="module")
def twins() -> tuple[torch.nn.Module, torch.nn.Module]:
    """lucid's resnet_18 and timm's resnet18 holding the same (random) weights."""
    torch.manual_seed(0)
    ours = models.resnet_18(num_classes=10).eval()
    theirs = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    theirs.load_state_dict(weights.convert(ours.state_dict(), "lucid", to="timm"))
    return ours, theirs


def test_feature_info_matches_timm(twins) -> None:
    ours, theirs = twins
    assert [(f["num_chs"], f["reduction"]) for f in ours.feature_info] == [
        (f["num_chs"], f["reduction"]) for f in theirs.feature_info
    ]
    assert ours.feature_info[0]["module"] == "stem"


def test_forward_intermediates_match_timm(twins) -> None:
    ours, theirs = twins
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for kwargs in ({}, {"indices": 2}, {"indices": [0, -1]}, {"indices": [1, 3], "stop_early": True}):
            final, maps = ours.forward_intermediates(x, **kwargs)
            their_final, their_maps = theirs.forward_intermediates(x, **kwargs)
            assert len(maps) == len(their_maps)
            for a, b in zip(maps, their_maps):
                torch.testing.assert_close(a, b)
            torch.testing.assert_close(final, their_final)
        torch.testing.assert_close(ours.forward_head(final, pre_logits=True), theirs.forward_head(their_final, pre_logits=True))
        full, _ = ours.forward_intermediates(x, indices=[0])
        torch.testing.assert_close(ours.forward_head(full), theirs(x))


def test_forward_intermediates_options() -> None:
    model = _tiny()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [m.shape[1:] for m in maps] == [
            (f["num_chs"], 64 // f["reduction"], 64 // f["reduction"]) for f in model.feature_info
        ]
        only = model.forward_intermediates(x, indices=(1, 2), intermediates_only=True, norm=True)
        assert isinstance(only, list) and len(only) == 2
        torch.testing.assert_close(only[1], maps[2])
        nhwc = model.forward_intermediates(x, indices=1, output_fmt="NHWC", intermediates_only=True)
        torch.testing.assert_close(nhwc[0], maps[4].permute(0, 2, 3, 1))
        early_final, _ = model.forward_intermediates(x, indices=[2], stop_early=True)
        torch.testing.assert_close(early_final, maps[2])
    for bad, message in (([5], r"feature numbers in -5\.\.4"), (6, "last 6 features"), ([], "at least one"), ("1", "an int or a sequence")):
        with pytest.raises((ValueError, TypeError), match=message):
            model.forward_intermediates(x, indices=bad)
    with pytest.raises(ValueError, match="output_fmt must be one of NCHW, NHWC, got 'NLC'"):
        model.forward_intermediates(x, output_fmt="NLC")


def test_feature_list_net(twins) -> None:
    ours, theirs = twins
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got = FeatureListNet(copy.deepcopy(ours), out_indices=(1, 2, 3, 4))(x)
        expected = FeatureListNet(copy.deepcopy(theirs), out_indices=(1, 2, 3, 4))(x)
        stem = FeatureListNet(copy.deepcopy(ours), out_indices=(0,))(x)
    assert len(got) == 4
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    assert stem[0].shape == (1, 64, 32, 32)


def test_feature_getter_net_prunes_and_matches() -> None:
    model = _tiny()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True)
        net = FeatureGetterNet(copy.deepcopy(model), out_indices=(1, 2), norm=True)
        got = net(x)
    assert net.feature_info.channels() == [f["num_chs"] for f in model.feature_info[1:3]]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    pruned = net.model
    assert len(pruned.layer3) == 0 and len(pruned.layer4) == 0
    assert isinstance(pruned.fc, torch.nn.Identity) and pruned.num_features == model.feature_info[2]["num_chs"]


def test_classifier_get_and_reset() -> None:
    model = _tiny()
    assert model.get_classifier() is model.fc and model.get_classifier(name_only=True) == "fc"
    x = torch.randn(2, 3, 32, 32)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7) and model.num_classes == 7 and model.config.num_classes == 7
    model.reset_classifier(0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.forward_head(model.forward_features(x), pre_logits=True))
    assert model(x).shape == (2, model.num_features)
    model.reset_classifier(0, global_pool="")
    assert model(x).shape == (2, model.num_features, 1, 1)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, model.num_features, 2, 2)
    with pytest.raises(ValueError, match="global_pool must be 'avg', 'max', '' or None, got 'mean'"):
        model.reset_classifier(3, global_pool="mean")
    with pytest.raises(ValueError, match="num_classes must be an int >= 0, got -1"):
        model.reset_classifier(-1)


def test_layer_decay_with_timm_optimizer() -> None:
    model = _tiny()
    decay = 0.5
    optimizer = create_optimizer_v2(model, "sgd", lr=1.0, weight_decay=1e-4, layer_decay=decay)
    scale_of = {id(p): g["lr_scale"] for g in optimizer.param_groups for p in g["params"]}
    blocks = sum(model.config.layers)
    # stem, one group per block, then the classifier: scales decay ** (blocks + 1) .. decay ** 0
    assert scale_of[id(model.stem[0].weight)] == pytest.approx(decay ** (blocks + 1))
    assert scale_of[id(model.layer1[0].conv1.conv.weight)] == pytest.approx(decay**blocks)
    assert scale_of[id(model.layer4[0].conv3[0].weight)] == pytest.approx(decay)
    assert scale_of[id(model.fc.weight)] == 1.0
    assert len({round(s, 9) for s in scale_of.values()}) == blocks + 2


def test_resolve_data_config_defaults_and_published_weights() -> None:
    model = _tiny()
    assert resolve_data_config(model=model) == {
        "input_size": (3, 224, 224), "interpolation": "bilinear", "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225), "crop_pct": 0.875, "crop_mode": "center",
    }
    entry = weights.info("resnext_50_32x4d", "IMAGENET1K_V2")
    model.metadata = {"weights": entry.to_metadata()}
    data = resolve_data_config(model=model)
    assert data["interpolation"] == entry.interpolation == "bilinear"
    transform = str(create_transform(**data))
    assert f"Resize(size={entry.resize}," in transform and f"CenterCrop(size=({entry.crop}, {entry.crop}))" in transform
    assert model.default_cfg == model.pretrained_cfg and model.pretrained_cfg["tag"] == "IMAGENET1K_V2"


def test_pretrained_cfg_follows_training_metadata_and_channels() -> None:
    model = ResNeXt(ResNeXtConfig(cardinality=4, base_width=32, in_channels=1, **TINY))
    model.metadata = {"preprocessing": {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.25], "crop": 1.0}}
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (1, 32, 32) and cfg["crop_pct"] == 1.0
    assert cfg["mean"] == (0.5,) and cfg["std"] == (0.25,)
    assert resolve_data_config(model=models.ResNeXt(ResNeXtConfig(cardinality=4, base_width=32, in_channels=1, **TINY)))["mean"] == (
        pytest.approx(sum((0.485, 0.456, 0.406)) / 3),
    )


def test_pre_activation_final_norm() -> None:
    model = models.ResNet(models.ResNetConfig(block="preact_bottleneck", num_classes=5, **TINY)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, (raw,) = model.forward_intermediates(x, indices=1)
        _, (normed,) = model.forward_intermediates(x, indices=1, norm=True)
        torch.testing.assert_close(final, model.forward_features(x))
        torch.testing.assert_close(normed, final)
        torch.testing.assert_close(model.post_act(raw), final)
        assert not torch.allclose(raw, final)
    kept = model.prune_intermediate_layers([2, 4], prune_norm=True)
    assert kept == [2, 4] and model.post_act is None and isinstance(model.fc, torch.nn.Identity)
