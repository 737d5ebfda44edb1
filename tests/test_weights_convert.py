"""Conversion between torchvision/timm and lucid layouts, checked against independent forwards.

Two independent expectations: the real torchvision and timm models (random weights, BatchNorm
statistics measured on random images, then perturbed), and a functional forward written here
that reads torchvision/timm key names directly. Run with ``-s`` to see the measured differences.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lucid.models as models
from lucid.weights import CheckpointError, convert, detect_layout, load_checkpoint, load_into

TOL = 1e-4



SEED_CONFIG = dict(layers=[3, 4, 6, 3], cardinality=32, base_width=4, num_classes=10, in_channels=1, stem_type="deep", stem_width=32)


def realistic(model: nn.Module, in_channels: int, seed: int = 0) -> nn.Module:
    """Random BatchNorm affine parameters and running statistics of the size real activations have.

    The statistics are measured on one random batch (train mode, cumulative average) and then
    perturbed, so that a mix-up of any two BatchNorms, or of mean and variance, shows in the logits.
    (timm zero-initialises each block's last BatchNorm; randomising them keeps every branch live.)
    """
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5, generator=gen)
            bn.bias.normal_(0.0, 0.2, generator=gen)
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        model(torch.randn(8, in_channels, 64, 64, generator=gen))
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(0.1 * torch.randn(bn.running_mean.shape, generator=gen) * bn.running_var.sqrt())
            bn.running_var.mul_(torch.empty(bn.running_var.shape).uniform_(0.7, 1.4, generator=gen))
    return model.eval()


def relative_difference(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|."""
    return ((got - want).abs().max() / want.abs().max()).item()


def compare(reference: nn.Module, lucid_model: nn.Module, in_channels: int, label: str, size: int = 64, batch: int = 2) -> float:
    """Relative logit difference of the two models on one random batch (printed; see ``pytest -s``)."""
    x = torch.randn(batch, in_channels, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = reference.eval()(x), lucid_model.eval()(x)
    assert got.shape == want.shape
    diff = relative_difference(got, want)
    print(f"\n{label}: max|diff|/max|logit| = {diff:.2e} (max|logit| {want.abs().max().item():.3g})")
    return diff


# ------------------------------------------------------------- the real torchvision and timm models
# Each *_pair function returns (reference model, lucid model with the converted weights, in_channels, label);
# scripts/check_conversion.py runs the same pairs at any resolution and prints a table.

TORCHVISION_CASES = [
    ("resnext50_32x4d", "resnext_50_32x4d"),
    ("resnext101_64x4d", "resnext_101_64x4d"),
    ("resnet18", "resnet_18"),
    ("resnet50", "resnet_50"),
    ("wide_resnet50_2", "wide_resnet_50"),
]


def torchvision_pair(tv_name: str, preset: str) -> tuple[nn.Module, nn.Module, int, str]:
    import torchvision

    torch.manual_seed(0)
    reference = realistic(getattr(torchvision.models, tv_name)(), 3)
    sd = reference.state_dict()
    assert detect_layout(sd) == "torchvision"
    model = load_checkpoint(models.create_model(preset), sd, source="torchvision")
    return reference, model, 3, f"torchvision {tv_name} -> lucid {preset}"


@pytest.mark.parametrize("tv_name, preset", TORCHVISION_CASES)
def test_torchvision_checkpoint_gives_torchvision_logits(tv_name: str, preset: str) -> None:
    pytest.importorskip("torchvision")
    assert compare(*torchvision_pair(tv_name, preset)) < TOL


RESNET_D = dict(stem_type="deep", stem_width=32, avg_down=True)
TIMM_CASES = [  # timm model name, its keyword arguments, the matching lucid model
    ("resnext50d_32x4d", {}, lambda: models.resnext_50_32x4d(**RESNET_D)),
    ("resnet50d", {}, lambda: models.resnet_50(**RESNET_D)),
    ("resnext50_32x4d", dict(in_chans=1, num_classes=10, stem_type="deep", stem_width=32),
     lambda: models.ResNeXt(models.ResNeXtConfig(**SEED_CONFIG))),  # the specification's model
    # squeeze-excite: timm rounds the hidden width to a multiple of 8, and so does lucid
    ("seresnet18", {}, lambda: models.resnet_18(block_args={"se": True})),
    ("seresnet34", {}, lambda: models.resnet_34(block_args={"se": True})),
    ("seresnet50", {}, lambda: models.resnet_50(block_args={"se": True})),
    ("seresnext50_32x4d", {}, lambda: models.resnext_50_32x4d(block_args={"se": True})),
]


def timm_pair(timm_name: str, timm_kwargs: dict, build: Callable[[], nn.Module]) -> tuple[nn.Module, nn.Module, int, str]:
    import timm

    torch.manual_seed(0)
    in_channels = timm_kwargs.get("in_chans", 3)
    reference = realistic(timm.create_model(timm_name, pretrained=False, **timm_kwargs), in_channels)
    sd = reference.state_dict()
    assert detect_layout(sd) == "timm"
    model = build()
    model.load_state_dict(convert(sd, "timm"), strict=True)
    return reference, model, in_channels, f"timm {timm_name}{''.join(f' {k}={v}' for k, v in timm_kwargs.items())} -> lucid"


@pytest.mark.parametrize("timm_name, timm_kwargs, build", TIMM_CASES, ids=["resnext50d_32x4d", "resnet50d", "resnext50_32x4d-seed", "seresnet18", "seresnet34", "seresnet50", "seresnext50_32x4d"])
def test_timm_checkpoint_gives_timm_logits(timm_name: str, timm_kwargs: dict, build: Callable[[], nn.Module]) -> None:
    pytest.importorskip("timm")
    assert compare(*timm_pair(timm_name, timm_kwargs, build)) < TOL


def lucid_to_torchvision_pair() -> tuple[nn.Module, nn.Module, int, str]:
    import torchvision

    torch.manual_seed(0)
    model = realistic(models.resnet_50(), 3)
    reference = torchvision.models.resnet50()
    reference.load_state_dict(convert(model.state_dict(), "lucid", to="torchvision"), strict=True)
    return reference, model, 3, "lucid resnet_50 -> torchvision resnet50"


def lucid_to_timm_pair() -> tuple[nn.Module, nn.Module, int, str]:
    import timm

    torch.manual_seed(0)
    model = realistic(models.resnext_50_32x4d(**RESNET_D), 3)
    reference = timm.create_model("resnext50d_32x4d", pretrained=False)
    reference.load_state_dict(convert(model.state_dict(), "lucid", to="timm"), strict=True)
    return reference, model, 3, "lucid resnext_50_32x4d deep stem + avg_down -> timm resnext50d_32x4d"


def test_lucid_weights_go_back_to_torchvision() -> None:
    pytest.importorskip("torchvision")
    assert compare(*lucid_to_torchvision_pair()) < TOL


def test_lucid_resnet_d_weights_go_to_timm() -> None:
    pytest.importorskip("timm")
    assert compare(*lucid_to_timm_pair()) < TOL


# ------------------------------------------------- a functional forward over the torchvision/timm names


def _bn(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"], sd[f"{name}.bias"], False, 0.0, 1e-5)


def _conv(sd: dict, name: str, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    w = sd[f"{name}.weight"]
    return F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=x.shape[1] // w.shape[1])


def reference_forward(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """ResNet/ResNeXt logits computed straight from torchvision/timm key names (stride on the 3x3 conv)."""
    if "conv1.0.weight" in sd:  # timm deep stem: conv1.{0,1,3,4,6} + bn1
        x = F.relu(_bn(sd, "conv1.1", _conv(sd, "conv1.0", x, 2)))
        x = F.relu(_bn(sd, "conv1.4", _conv(sd, "conv1.3", x)))
        x = F.relu(_bn(sd, "bn1", _conv(sd, "conv1.6", x)))
    else:
        x = F.relu(_bn(sd, "bn1", _conv(sd, "conv1", x, 2)))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage in range(1, 5):
        j = 0
        while f"layer{stage}.{j}.conv1.weight" in sd:
            p = f"layer{stage}.{j}"
            stride = 2 if stage > 1 and j == 0 else 1
            bottleneck = f"{p}.conv3.weight" in sd
            out = F.relu(_bn(sd, f"{p}.bn1", _conv(sd, f"{p}.conv1", x, 1 if bottleneck else stride)))
            out = _bn(sd, f"{p}.bn2", _conv(sd, f"{p}.conv2", out, stride if bottleneck else 1))
            if bottleneck:
                out = _bn(sd, f"{p}.bn3", _conv(sd, f"{p}.conv3", F.relu(out)))
            if f"{p}.downsample.0.weight" in sd:
                shortcut = _bn(sd, f"{p}.downsample.1", _conv(sd, f"{p}.downsample.0", x, stride))
            elif f"{p}.downsample.1.weight" in sd:  # ResNet-D: average pool, then a stride-1 conv
                pooled = F.avg_pool2d(x, 2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else x
                shortcut = _bn(sd, f"{p}.downsample.2", _conv(sd, f"{p}.downsample.1", pooled))
            else:
                shortcut = x
            x = F.relu(out + shortcut)
            j += 1
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


TINY = [
    ("torchvision", models.ResNetConfig(block="basic", layers=[2, 1, 1, 1], channels=(8, 16, 16, 24), num_classes=7)),
    ("torchvision", models.ResNeXtConfig(layers=[1, 2, 1, 1], cardinality=4, base_width=32, channels=(8, 8, 16, 16), in_channels=2, stem_width=16)),
    ("timm", models.ResNeXtConfig(layers=[1, 1, 2, 1], cardinality=4, base_width=32, channels=(8, 8, 16, 16), num_classes=10,
                                  in_channels=1, stem_type="deep", stem_width=8, avg_down=True)),
    ("timm", models.ResNetConfig(block="basic", layers=[1, 1, 1, 1], channels=(8, 8, 16, 16), stem_type="deep", stem_width=8, avg_down=True)),
]


@pytest.mark.parametrize("layout, config", TINY, ids=["tv-basic", "tv-grouped-2ch", "timm-deep-avgdown-1ch", "timm-basic-deep"])
def test_functional_forward_over_external_names_matches(layout: str, config: models.ModelConfig) -> None:
    cls = models.ResNet if isinstance(config, models.ResNetConfig) else models.ResNeXt
    model = realistic(cls(config), config.in_channels)
    external = convert(model.state_dict(), "lucid", to=layout)
    assert detect_layout(external) == layout
    x = torch.randn(2, config.in_channels, 45, 45)  # odd size: exercises ceil_mode of the ResNet-D pool
    with torch.no_grad():
        assert relative_difference(model(x), reference_forward(external, x)) < TOL
    # and back: external -> lucid restores every tensor under its own name
    back = convert(external, layout)
    assert back.keys() == model.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())


def test_a_swapped_batchnorm_statistic_would_be_caught() -> None:
    """The statistics are realistic enough that mixing up two same-shaped BatchNorms shows far above the tolerance."""
    config = models.ResNetConfig(block="basic", layers=[1, 1, 1, 1], channels=(8, 8, 16, 16))
    model = realistic(models.ResNet(config), 3)
    external = convert(model.state_dict(), "lucid", to="torchvision")
    swapped = dict(external)
    swapped["layer1.0.bn1.running_var"], swapped["layer1.0.bn2.running_var"] = external["layer1.0.bn2.running_var"], external["layer1.0.bn1.running_var"]
    x = torch.randn(2, 3, 45, 45)
    with torch.no_grad():
        assert relative_difference(model(x), reference_forward(external, x)) < TOL
        assert relative_difference(model(x), reference_forward(swapped, x)) > 100 * TOL


# ------------------------------------------------------------------------------ keys and errors


TIMM_NAMES = {name: p.timm for name, p in models.PRESETS.items() if p.timm}  # from the presets table


def _shapes(sd: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def test_every_preset_has_a_conversion_case() -> None:
    """Only the pre-activation presets lack a timm peer (timm's resnet200 is a post-activation network);
    their architecture is checked against a hand count in test_models.py instead."""
    missing = sorted(set(models.list_models()) - set(TIMM_NAMES))
    assert missing == ["resnet_1001", "resnet_200", "resnet_269"]
    assert all(models.PRESETS[name].block == "preact_bottleneck" for name in missing)


@pytest.mark.parametrize("preset", sorted(TIMM_NAMES))
def test_every_preset_and_variant_converts_to_the_exact_lucid_state_dict(preset: str) -> None:
    """Shapes only (meta device): timm's and torchvision's models of each preset, plain and with
    in_channels=1, num_classes=10, deep stem and ResNet-D shortcuts, convert to lucid's keys and shapes."""
    timm = pytest.importorskip("timm")
    import torchvision

    variant = dict(in_chans=1, num_classes=10, stem_type="deep", stem_width=32, avg_down=True)
    with torch.device("meta"):
        for timm_kwargs in ({}, variant):
            reference = timm.create_model(TIMM_NAMES[preset], pretrained=False, **timm_kwargs).state_dict()
            lucid_kwargs = {"in_channels" if k == "in_chans" else k: v for k, v in timm_kwargs.items()}
            lucid_sd = models.create_model(preset, **lucid_kwargs).state_dict()
            assert _shapes(convert(reference, "timm")) == _shapes(lucid_sd)
            assert _shapes(convert(lucid_sd, "lucid", to="timm")) == _shapes(reference)
        tv_builder = getattr(torchvision.models, TIMM_NAMES[preset], None)
        if tv_builder is not None:  # torchvision has 10 of the 13
            reference = tv_builder().state_dict()
            assert _shapes(convert(reference, "torchvision")) == _shapes(models.create_model(preset).state_dict())


def test_key_names_follow_the_documented_layout() -> None:
    with torch.device("meta"):
        bottleneck = convert(models.resnet_50(stem_type="deep", stem_width=32, avg_down=True).state_dict(), "lucid", to="timm")
        basic = convert(models.resnet_18().state_dict(), "lucid", to="torchvision")
    for key in ("conv1.0.weight", "conv1.1.running_var", "conv1.6.weight", "bn1.bias", "layer1.0.conv3.weight",
                "layer1.0.bn3.weight", "layer2.0.downsample.1.weight", "layer2.0.downsample.2.running_mean", "fc.bias"):
        assert key in bottleneck, key
    for key in ("conv1.weight", "bn1.weight", "layer1.1.conv2.weight", "layer1.1.bn2.bias", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.running_var"):
        assert key in basic, key
    assert not any(".conv3." in k for k in basic)


def test_squeeze_excite_keys_travel_to_timm_and_back() -> None:
    model = models.ResNetConfig(block="bottleneck", layers=[1, 1, 1, 1], channels=(16, 16, 16, 16), block_args={"se": True, "se_args": {"reduction": 4}})
    sd = models.ResNet(model).state_dict()
    timm_sd = convert(sd, "lucid", to="timm")
    assert "layer1.0.se.fc1.weight" in timm_sd and detect_layout(timm_sd) == "timm"
    assert convert(timm_sd, "auto").keys() == sd.keys()
    with pytest.raises(CheckpointError, match="se"):
        convert(sd, "lucid", to="torchvision")


def test_torchvision_refuses_what_it_cannot_hold() -> None:
    with torch.device("meta"):
        sd = models.resnet_50(stem_type="deep").state_dict()
    with pytest.raises(CheckpointError, match="to='timm'"):
        convert(sd, "lucid", to="torchvision")


def test_old_checkpoints_without_num_batches_tracked_load() -> None:
    sd = convert(models.resnet_18().state_dict(), "lucid", to="torchvision")
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    model = models.resnet_18()
    load_into(model, convert(old, "torchvision"))
    assert int(model.stem[1].num_batches_tracked) == 0
    with pytest.raises(CheckpointError, match="missing from the checkpoint"):  # other missing keys are still refused
        load_into(model, convert({k: v for k, v in old.items() if k != "fc.bias"}, "torchvision"))


def test_bad_arguments_and_keys_are_named() -> None:
    sd = convert(models.resnet_18().state_dict(), "lucid", to="torchvision")
    with pytest.raises(ValueError, match="source must be one of"):
        convert(sd, "caffe")
    with pytest.raises(ValueError, match="to must be one of"):
        convert(sd, "torchvision", to="keras")
    with pytest.raises(CheckpointError, match="'lucid' layout"):
        convert(models.resnet_18().state_dict(), "torchvision")
    with pytest.raises(CheckpointError, match="cannot tell its layout"):
        convert({"features.0.weight": torch.zeros(1)}, "auto")
    with pytest.raises(CheckpointError, match="'layer1.0.attn.weight'"):
        convert({**sd, "layer1.0.attn.weight": torch.zeros(1)}, "torchvision")
