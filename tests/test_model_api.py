"""The model layer's public API: blocks, presets as data, norm layers, untrusted configs, and the
PyTorch tools a model must pass through (TorchScript, fx, torch.export, torch.compile, torch.hub)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import lucid
from lucid import models
from lucid.core.errors import CheckpointError
from lucid.models import BasicBlock, Bottleneck, PreActBottleneck, ResNet, ResNetConfig

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], num_classes=5)
VARIANTS = {
    "basic": lambda: ResNet(ResNetConfig(block="basic", **SMALL)),
    "bottleneck-se-deep": lambda: ResNet(ResNetConfig(block="bottleneck", stem_type="deep", stem_width=8, avg_down=True,
                                                       block_args={"cardinality": 4, "base_width": 32, "se": True}, **SMALL)),
    "preact": lambda: ResNet(ResNetConfig(block="preact_bottleneck", **{**SMALL, "layers": [2, 1, 1, 1]})),
}


def _eager(build) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        return model, x, model(x)


# ---------------------------------------------------------------------------- construction


def test_model_keeps_the_config_object_it_was_given() -> None:
    config = ResNetConfig(block="basic", layers=[2, 2, 2, 2])
    assert ResNet(config).config is config
    xconfig = models.ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4)
    with torch.device("meta"):
        model = models.ResNeXt(xconfig)
    assert model.config is xconfig and (model.cardinality, model.base_width) == (32, 4)


def test_a_resnext_is_built_through_its_resnet_config() -> None:
    """Same modules, same parameter shapes, same outputs as the equivalent ResNetConfig model."""
    xconfig = models.ResNeXtConfig(cardinality=4, base_width=32, block_args={"se": True}, **SMALL)
    torch.manual_seed(0)
    a = models.ResNeXt(xconfig).eval()
    torch.manual_seed(0)
    b = ResNet(xconfig.resnet_config()).eval()
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_preset_forwards_overrides_into_its_config() -> None:
    with torch.device("meta"):
        model = models.resnet_50(num_classes=10, in_channels=1, stem_width=32, stem_type="deep", avg_down=True)
    assert model.config == ResNetConfig(block="bottleneck", layers=[3, 4, 6, 3], num_classes=10, in_channels=1, stem_width=32,
                                        stem_type="deep", avg_down=True)


def test_deep_presets_run() -> None:
    with torch.no_grad():
        out = models.resnet_200(num_classes=7).eval()(lucid.zeros(1, 3, 64, 64))
    assert out.shape == (1, 7)


# ---------------------------------------------------------------------------- blocks


def test_preactivation_network_follows_the_paper() -> None:
    model = VARIANTS["preact"]()
    first, second, projecting = model.layer1[0], model.layer1[1], model.layer2[0]
    assert all(isinstance(b, PreActBottleneck) for s in model.stages for b in s)
    assert first.bn1 is None  # the stem has just applied BN-ReLU
    assert isinstance(second.bn1, nn.BatchNorm2d) and second.downsample is None
    assert [type(m) for m in projecting.downsample] == [nn.Conv2d]  # no norm on a pre-activated shortcut
    assert [type(m) for m in model.post_act] == [nn.BatchNorm2d, nn.ReLU]  # final BN-ReLU before pooling
    # an identity block adds its input, untouched, to the branch computed from relu(bn1(x))
    second.eval()
    x = torch.randn(1, second.conv1.in_channels, 6, 6)
    with torch.no_grad():
        a = torch.relu(second.bn1(x))
        branch = second.conv3(torch.relu(second.bn3(second.conv2(torch.relu(second.bn2(second.conv1(a)))))))
        torch.testing.assert_close(second(x), branch + x)
    # the projection is taken from the pre-activated input
    projecting.eval()
    x = torch.randn(1, projecting.conv1.in_channels, 6, 6)
    with torch.no_grad():
        a = torch.relu(projecting.bn1(x))
        branch = projecting.conv3(torch.relu(projecting.bn3(projecting.conv2(torch.relu(projecting.bn2(projecting.conv1(a)))))))
        torch.testing.assert_close(projecting(x), branch + projecting.downsample(a))


def test_preactivation_zero_init_makes_blocks_identities() -> None:
    model = ResNet(ResNetConfig(block="preact_bottleneck", zero_init_residual=True, **SMALL)).eval()
    block = model.layer1[0]
    x = torch.randn(1, block.conv1.in_channels, 6, 6)
    assert torch.count_nonzero(block.conv3.weight) == 0
    torch.testing.assert_close(block(x), block.downsample(x))


def test_public_blocks_keep_the_documented_structure() -> None:
    from lucid.nn import ConvBNReLU2d

    b = Bottleneck(64, 64, 2, None, se=True, se_args={"reduction": 16})
    assert isinstance(b.conv1, ConvBNReLU2d) and isinstance(b.conv2, ConvBNReLU2d) and isinstance(b.conv3, nn.Sequential)
    assert [type(m) for m in b.conv3] == [nn.Conv2d, nn.BatchNorm2d] and b.se is not None and isinstance(b.relu, nn.ReLU)
    assert b.conv2.conv.stride == (2, 2)
    basic = BasicBlock(8, 8)
    assert isinstance(basic.conv1, ConvBNReLU2d) and basic.downsample is None and basic.se is None


@pytest.mark.parametrize("build", [lambda **k: models.resnet_50(**k), lambda **k: models.resnet_18(**k)])
def test_dilation_keeps_the_feature_map_size(build) -> None:
    plain, dilated = build(num_classes=3).eval(), build(num_classes=3, block_args={"dilation": 2}).eval()
    convs = [m for m in dilated.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.dilation == (2, 2)]
    assert convs and all(m.padding == (2, 2) for m in convs)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [f.shape for f in dilated.forward_intermediates(x, intermediates_only=True)] == [f.shape for f in plain.forward_intermediates(x, intermediates_only=True)]


def test_norm_layer_reaches_every_norm() -> None:
    from torchvision.ops import FrozenBatchNorm2d

    with torch.device("meta"):
        plain = models.resnext_50_32x4d(stem_type="deep", avg_down=True)
        frozen = models.resnext_50_32x4d(stem_type="deep", avg_down=True, norm_layer=FrozenBatchNorm2d)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in frozen.modules()) == n_bn
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.layer2[0].downsample)  # shortcuts too
    assert sum(p.numel() for p in frozen.parameters()) == sum(p.numel() for p in plain.parameters()) - 2 * sum(
        m.num_features for m in plain.modules() if isinstance(m, nn.BatchNorm2d)
    )
    # a BatchNorm-trained checkpoint loads into the frozen model and gives the same eval logits
    torch.manual_seed(0)
    trained = models.resnet_18(num_classes=4).eval()
    frozen18 = models.resnet_18(num_classes=4, norm_layer="FrozenBatchNorm2d")
    frozen18.load_state_dict({k: v for k, v in trained.state_dict().items() if "num_batches_tracked" not in k})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(frozen18(x), trained(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- untrusted configs


def _write_config(folder: Path, **fields) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "lucid.resnet", "block": "bottleneck", "layers": [1, 1, 1, 1], **fields}))
    return folder


def test_a_huge_config_is_refused_before_memory_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _write_config(tmp_path / "huge", channels=[64, 128, 256, 10**7])
    devices = []  # the device of every parameter made while the folder is read
    register = nn.Module.register_parameter

    def recording(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        devices.append(None if param is None else param.device.type)
        register(module, name, param)

    monkeypatch.setattr(nn.Module, "register_parameter", recording)
    with pytest.raises(CheckpointError, match=r"config.json: the config describes a model of [\d,]+ parameters, over the limit "
                                              r"of 2,000,000,000; pass max_parameters=N \(or set LUCID_MAX_PARAMETERS=N\)"):
        models.from_pretrained(folder)
    assert devices and set(devices) <= {"meta", None}  # counted on the meta device: no parameter memory was allocated


def test_the_parameter_limit_can_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = ResNet(ResNetConfig(block="basic", **SMALL))
    model.save_pretrained(tmp_path / "m")
    limit = sum(p.numel() for p in model.parameters())
    assert models.from_pretrained(tmp_path / "m", max_parameters=limit) is not None
    with pytest.raises(CheckpointError, match="over the limit"):
        models.from_pretrained(tmp_path / "m", max_parameters=limit - 1)
    monkeypatch.setenv("LUCID_MAX_PARAMETERS", str(limit - 1))
    with pytest.raises(CheckpointError, match="over the limit"):
        models.from_pretrained(tmp_path / "m")


def test_bad_config_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"bad/config.json: block_args has unknown key 'se_ratio'"):
        models.from_pretrained(_write_config(tmp_path / "bad", block_args={"se_ratio": 4}))
    with pytest.raises(CheckpointError, match=r"deep/config.json: layers=\[1000000, 1, 1, 1\] asks for 1,000,003 blocks"):
        models.from_pretrained(_write_config(tmp_path / "deep", layers=[10**6, 1, 1, 1]))


def test_folders_of_older_lucid_still_load(tmp_path: Path) -> None:
    """A folder as the previous release wrote it: model_type 'resnext', no library_name, SE as se_reduction."""
    torch.manual_seed(0)
    model = models.ResNeXt(models.ResNeXtConfig(cardinality=4, base_width=32, block_args={"se": True, "se_args": {"reduction": 4, "divisor": 1}}, **SMALL))
    model.save_pretrained(tmp_path / "old")
    data = json.loads((tmp_path / "old" / "config.json").read_text())
    data.update(model_type="resnext", block_args={"se_reduction": 4})
    del data["library_name"], data["norm_layer"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(data))
    again = models.from_pretrained(tmp_path / "old").eval()
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(again(x), model.eval()(x))


# ---------------------------------------------------------------------------- PyTorch tools


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_torchscript_fx_and_trace_match_eager(name: str) -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    model, x, want = _eager(VARIANTS[name])
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), want)
        torch.testing.assert_close(torch.jit.trace(model, x)(x), want)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), want)
        features = create_feature_extractor(model, {"layer4": "out", "fc": "logits"})(x)
        torch.testing.assert_close(features["logits"], want)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bottleneck-se-deep", "preact"])
def test_torch_export_matches_eager(name: str) -> None:
    model, x, want = _eager(VARIANTS[name])
    program = torch.export.export(model, (x,))
    torch.testing.assert_close(program.module()(x), want)


@pytest.mark.slow
def test_torch_compile_matches_eager() -> None:
    model, x, want = _eager(VARIANTS["preact"])
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x), want, rtol=1e-4, atol=1e-4)


def test_torch_hub_loads_every_preset_from_the_repository() -> None:
    with torch.device("meta"):
        for name, preset in models.PRESETS.items():
            model = torch.hub.load(str(ROOT), name, source="local", trust_repo=True)
            assert sum(p.numel() for p in model.parameters()) == preset.params
    small = torch.hub.load(str(ROOT), "resnet_18", source="local", num_classes=10, channels=[8, 16, 32, 64])
    assert small.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


# ---------------------------------------------------------------------------- structure


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every ``from ... import`` in a lucid source file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def test_the_model_layer_never_imports_the_layers_above_it() -> None:
    above = ("lucid.weights", "lucid.optimize", "lucid.export", "lucid.visual", "lucid.train", "lucid.cli")
    for path in sorted((ROOT / "lucid" / "models").glob("*.py")):
        for module, _ in _imports(path):
            assert not module.startswith(above), f"{path.name} imports {module}"


def test_no_private_name_is_imported_across_modules() -> None:
    for path in sorted((ROOT / "lucid").rglob("*.py")):
        for module, names in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not (module.startswith("lucid") and private), f"{path.relative_to(ROOT)} imports {private} from {module}"


def test_readme_preset_table_is_the_presets_table() -> None:
    from lucid.models.presets import preset_table_markdown

    assert preset_table_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")
