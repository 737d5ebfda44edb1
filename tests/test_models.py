"""Architecture: reference parameter counts, structure, forward behaviour and backbone features."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import lucid
from lucid import models
from lucid.models import ResNet, ResNetConfig, ResNeXt, ResNeXtConfig

TINY_CHANNELS = [8, 16, 32, 64]  # channels of the tiny_resnext fixture (conftest.py)

# Parameter counts of the torchvision / timm reference models (num_classes=1000).
REFERENCE_PARAMS = {
    "resnet_18": 11_689_512,
    "resnet_34": 21_797_672,
    "resnet_50": 25_557_032,
    "resnet_101": 44_549_160,
    "resnet_152": 60_192_808,
    "wide_resnet_50": 68_883_240,
    "wide_resnet_101": 126_886_696,
    "resnext_50_32x4d": 25_028_904,
    "resnext_101_32x4d": 44_177_704,
    "resnext_101_32x8d": 88_791_336,
    "resnext_101_32x16d": 194_026_792,
    "resnext_101_32x32d": 468_530_472,
    "resnext_101_64x4d": 83_455_272,
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_counts_match_references(name: str) -> None:
    with torch.device("meta"):
        model = models.create_model(name)
    assert n_params(model) == REFERENCE_PARAMS[name]


def preact_params(layers: tuple[int, ...], classes: int = 1000) -> int:
    """Parameters of a pre-activation bottleneck ResNet, counted by hand from its definition:
    7x7 stem conv + BN; per block BN(in) (not in the network's first block), 1x1 in->c, BN, 3x3 c->c,
    BN, 1x1 c->4c; a 1x1 projection (no BN) in each stage's first block; final BN; classifier."""
    total, prev = 3 * 64 * 49 + 2 * 64, 64
    for stage, (depth, c) in enumerate(zip(layers, (64, 128, 256, 512))):
        for j in range(depth):
            bn1 = 0 if stage == 0 and j == 0 else 2 * prev
            total += bn1 + prev * c + 2 * c + 9 * c * c + 2 * c + c * 4 * c + (prev * 4 * c if j == 0 else 0)
            prev = 4 * c
    return total + 2 * prev + prev * classes + classes


@pytest.mark.parametrize("name, layers", [("resnet_200", (3, 24, 36, 3)), ("resnet_269", (3, 30, 48, 8)), ("resnet_1001", (3, 94, 94, 3))])
def test_preactivation_presets_match_a_hand_count(name: str, layers: tuple[int, ...]) -> None:
    with torch.device("meta"):
        model = models.create_model(name)
    assert model.config.block == "preact_bottleneck" and model.config.layers == layers
    assert n_params(model) == preact_params(layers)


def test_presets_table_counts_are_the_measured_ones() -> None:
    assert set(REFERENCE_PARAMS) <= set(models.PRESETS)
    for name, preset in models.PRESETS.items():
        expected = REFERENCE_PARAMS.get(name) or preact_params(preset.config["layers"])
        assert preset.params == expected, name


def test_resnext50d_deep_stem_count_matches_timm() -> None:
    # timm's resnext50d_32x4d: deep stem of width 32 and ResNet-D shortcuts
    with torch.device("meta"):
        model = models.resnext_50_32x4d(stem_type="deep", stem_width=32, avg_down=True)
    assert n_params(model) == 25_048_136


def test_resnext_is_a_resnet_with_the_documented_attributes() -> None:
    cfg = ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4)
    with torch.device("meta"):
        model = ResNeXt(cfg)
    assert isinstance(model, ResNet) and model.config is cfg
    assert (model.cardinality, model.base_width) == (32, 4)
    for name in ("stem", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"):
        assert isinstance(getattr(model, name), nn.Module)
    assert [len(s) for s in model.stages] == [3, 4, 6, 3]
    assert all(isinstance(s, nn.Sequential) for s in model.stages)


def test_model_refuses_the_wrong_config_type() -> None:
    with pytest.raises(TypeError, match="ResNeXt expects a ResNeXtConfig, got ResNetConfig"):
        ResNeXt(ResNetConfig(block="basic", layers=[2, 2, 2, 2]))


def test_bottleneck_width_groups_and_stride_placement() -> None:
    with torch.device("meta"):
        x50 = models.resnext_50_32x4d()
        x101 = models.resnext_101_32x8d()
        wide = models.wide_resnet_50()
    # width = floor(stage_width * base_width / 64) * cardinality
    assert x50.layer1[0].conv2.conv.out_channels == 64 * 4 // 64 * 32 == 128
    assert x50.layer1[0].conv2.conv.groups == 32
    assert x101.layer4[0].conv2.conv.out_channels == 512 * 8 // 64 * 32 == 2048
    assert wide.layer1[0].conv2.conv.out_channels == 128 and wide.layer1[0].conv2.conv.groups == 1
    first = x50.layer2[0]
    assert first.conv1.conv.stride == (1, 1) and first.conv2.conv.stride == (2, 2)
    assert first.conv3[0].out_channels == 512 and isinstance(first.conv3[1], nn.BatchNorm2d)
    assert first.downsample[0].stride == (2, 2)
    assert x50.layer1[1].downsample is None


def test_plain_and_deep_stems() -> None:
    with torch.device("meta"):
        plain = models.resnet_50()
        deep = models.resnext_50_32x4d(in_channels=1, stem_type="deep", stem_width=32)
    conv = plain.stem[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (3, 64, (7, 7), (2, 2))
    convs = [m for m in deep.stem if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [(1, 32, (2, 2)), (32, 32, (1, 1)), (32, 64, (1, 1))]
    assert deep.layer1[0].conv1.conv.in_channels == 64  # first stage sees 2 * stem_width
    mp = deep.maxpool
    assert (mp.kernel_size, mp.stride, mp.padding) == (3, 2, 1)


def test_avg_down_shortcuts() -> None:
    with torch.device("meta"):
        model = models.resnet_50(avg_down=True)
    no_pool = model.layer1[0].downsample  # stage stride 1: no pool
    assert isinstance(no_pool[0], nn.Identity) and no_pool[1].stride == (1, 1)
    pooled = model.layer2[0].downsample
    pool = pooled[0]
    assert isinstance(pool, nn.AvgPool2d)
    assert (pool.kernel_size, pool.stride, pool.ceil_mode, pool.count_include_pad) == (2, 2, True, False)
    assert pooled[1].stride == (1, 1) and pooled[1].kernel_size == (1, 1) and isinstance(pooled[2], nn.BatchNorm2d)


def test_avg_down_handles_odd_sizes_with_ceil_mode() -> None:
    model = models.resnet_18(num_classes=3, avg_down=True).eval()
    features = model.forward_intermediates(torch.randn(1, 3, 72, 72), intermediates_only=True)
    # 72 -> 36 (stem) -> 18 (pool) -> 18, 9, 5, 3: the shortcut pools with ceil_mode to match the strided conv
    assert [tuple(f.shape[-2:]) for f in features] == [(36, 36), (18, 18), (9, 9), (5, 5), (3, 3)]


@pytest.mark.parametrize(
    "build, shape, classes",
    [
        (lambda: models.resnet_18(num_classes=7), (2, 3, 64, 64), 7),
        (lambda: models.resnet_34(num_classes=3, avg_down=True), (1, 3, 48, 80), 3),
        (lambda: models.resnext_50_32x4d(num_classes=10, in_channels=1, stem_type="deep", stem_width=32), (2, 1, 96, 64), 10),
        (lambda: models.resnext_50_32x4d(num_classes=4, avg_down=True, stem_type="deep", stem_width=16), (1, 3, 33, 47), 4),
        (lambda: models.wide_resnet_50(num_classes=2, channels=[16, 32, 64, 128]), (1, 3, 40, 40), 2),
    ],
)
def test_forward_shapes(build, shape: tuple[int, ...], classes: int) -> None:
    model = build().eval()
    with torch.no_grad():
        out = model(torch.randn(*shape))
    assert out.shape == (shape[0], classes) and torch.isfinite(out).all()


@pytest.mark.slow
def test_spec_model_at_224() -> None:
    cfg = ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4, num_classes=10, in_channels=1, stem_type="deep", stem_width=32)
    model = ResNeXt(cfg).eval()
    with torch.no_grad():
        assert model(lucid.zeros(1, 1, 224, 224)).shape == (1, 10)
        features = model.forward_features(lucid.zeros(1, 1, 224, 224))
    assert features.shape == (1, 2048, 7, 7)


def test_every_parameter_gets_a_finite_gradient(tiny_resnext: ResNeXt) -> None:
    model = tiny_resnext.train()
    x = torch.randn(4, 1, 32, 32)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_batchnorm_train_vs_eval(tiny_resnext: ResNeXt) -> None:
    model = tiny_resnext
    x = torch.randn(6, 1, 32, 32)
    bn = model.stem[1]
    before = bn.running_mean.clone()
    model.train()
    with torch.no_grad():
        batch_out = model(x)
        # in train mode a sample's output depends on the rest of the batch
        alone = model(x[:2])
    assert not torch.equal(bn.running_mean, before)
    assert not torch.allclose(batch_out[:2], alone, atol=1e-5)
    model.eval()
    stats = bn.running_mean.clone()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:2], model(x[:2]), rtol=1e-5, atol=1e-5)
    assert torch.equal(bn.running_mean, stats)  # eval never updates statistics


def test_initialisation() -> None:
    model = models.resnet_50()
    conv = model.layer3[0].conv2.conv  # 3x3, 256 -> 256
    fan_out = conv.out_channels * 9
    assert abs(conv.weight.std().item() - (2.0 / fan_out) ** 0.5) < 0.05 * (2.0 / fan_out) ** 0.5
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
    # the classifier keeps torch's default init: uniform within 1/sqrt(fan_in)
    assert model.fc.weight.abs().max() <= 1 / 2048**0.5


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_zero_init_residual(block: str) -> None:
    cfg = dict(block=block, layers=[1, 1, 1, 1], channels=[8, 16, 32, 64])
    last_bns = lambda m: [(b.conv3 if block == "bottleneck" else b.conv2)[1] for s in m.stages for b in s]  # noqa: E731
    zeroed = ResNet(ResNetConfig(**cfg, zero_init_residual=True))
    plain = ResNet(ResNetConfig(**cfg))
    assert all(torch.count_nonzero(bn.weight) == 0 for bn in last_bns(zeroed))
    assert all(torch.all(bn.weight == 1) for bn in last_bns(plain))
    # a zeroed block reduces to relu(shortcut(x))
    blk = zeroed.layer1[0].eval()
    x = torch.randn(1, blk.conv1.conv.in_channels, 8, 8)
    expected = torch.relu(x if blk.downsample is None else blk.downsample(x))
    torch.testing.assert_close(blk(x), expected)


def test_block_args_reach_every_block() -> None:
    model = models.resnext_50_32x4d(block_args={"drop_path": 0.1, "se": True, "se_args": {"reduction": 8}}, channels=[16, 32, 64, 128])
    blocks = [b for s in model.stages for b in s]
    assert len(blocks) == 16
    assert all(b.drop_path is not None and b.drop_path.p == 0.1 for b in blocks)
    # squeeze-excite width rounds like timm: to a multiple of 8, at least 8, never 10% below C / r
    widths = {b.conv3[0].out_channels: b.se.fc1.out_channels for b in blocks}
    assert widths == {64: 8, 128: 16, 256: 32, 512: 64}
    assert models.resnet_18(block_args={"se": True}).layer1[0].se.fc1.out_channels == 8  # 64 / 16 = 4, rounded up to 8
    plain = models.resnet_18()
    assert all(b.se is None and b.drop_path is None for s in plain.stages for b in s)
    with pytest.raises(ValueError, match="block_args has unknown key 'dropout' for BasicBlock"):
        models.resnet_18(block_args={"dropout": 0.1})


def test_drop_path_only_acts_in_training(tiny_resnext: ResNeXt) -> None:
    from lucid.models import ResNeXt as X

    model = X(tiny_resnext.config.replace(block_args={"drop_path": 0.5}))
    x = torch.randn(8, 1, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(1)
    with torch.no_grad():
        a = model(x)
    torch.manual_seed(2)
    with torch.no_grad():
        b = model(x)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    "x, fragment",
    [
        (torch.zeros(1, 224, 224), r"\(N, C, H, W\) with C=1 channels, got shape \(1, 224, 224\)"),
        (torch.zeros(1, 3, 64, 64), r"C=1 channels, got shape \(1, 3, 64, 64\)"),
        (torch.zeros(2, 1, 1, 64, 64), r"got shape \(2, 1, 1, 64, 64\)"),
    ],
)
def test_bad_input_is_refused_clearly(tiny_resnext: ResNeXt, x: torch.Tensor, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        tiny_resnext(x)
    with pytest.raises(ValueError, match=fragment):
        tiny_resnext.forward_intermediates(x)


def test_non_tensor_input_is_refused(tiny_resnext: ResNeXt) -> None:
    with pytest.raises(TypeError, match="expected a torch.Tensor"):
        tiny_resnext([[0.0]])


def test_backbone_features(tiny_resnext: ResNeXt) -> None:
    model = tiny_resnext.eval()
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        final, feats = model.forward_intermediates(x)
        last = model.forward_features(x)
        logits = model(x)
    # timm's convention: the stem (stride 2), then the four stages
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]
    assert [f["module"] for f in model.feature_info] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    for f, info in zip(feats, model.feature_info):
        assert f.shape == (2, info["num_chs"], 64 // info["reduction"], 96 // info["reduction"])
    assert [i["num_chs"] for i in model.feature_info[1:]] == [c * 4 for c in TINY_CHANNELS]
    torch.testing.assert_close(feats[-1], last)
    torch.testing.assert_close(final, last)
    torch.testing.assert_close(model.forward_head(last), logits)
    with torch.no_grad():
        picked = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True)
    torch.testing.assert_close(picked[0], feats[1])
    torch.testing.assert_close(picked[1], feats[2])
    with pytest.raises(ValueError, match=r"indices must hold feature numbers in -5\.\.4"):
        model.forward_intermediates(x, indices=[5])


def test_basic_block_feature_channels() -> None:
    with torch.device("meta"):
        model = models.resnet_34()
    assert [i["num_chs"] for i in model.feature_info] == [64, 64, 128, 256, 512] and model.num_features == 512


def test_fx_symbolic_trace_still_works(tiny_resnext: ResNeXt) -> None:
    model = tiny_resnext.eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
    with pytest.raises(ValueError, match="C=1 channels"):
        traced(torch.randn(2, 3, 32, 32))


def test_matches_torchvision_architecture_layer_by_layer() -> None:
    """Same module kinds and shapes as torchvision's resnext50_32x4d, in the same order."""
    tv = pytest.importorskip("torchvision.models")
    with torch.device("meta"):
        ours = models.resnext_50_32x4d()
        ref = tv.resnext50_32x4d()
    shapes = lambda m: [tuple(p.shape) for p in m.parameters()]  # noqa: E731
    assert shapes(ours) == shapes(ref)
