"""Config validation, normalisation, equality, migration and JSON round-trips."""
from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
from torch import nn

from lucid.core.errors import ConfigError, ConfigTypeError
from lucid.models import Bottleneck, ResNetConfig, ResNeXtConfig

BASE = dict(layers=[3, 4, 6, 3], cardinality=32, base_width=4)
RESNET = dict(block="bottleneck", layers=[3, 4, 6, 3])


def test_config_fields_in_documented_order() -> None:
    """ResNeXtConfig is ResNetConfig plus two required keyword fields; its block is fixed."""
    params = inspect.signature(ResNeXtConfig).parameters
    assert list(params) == [
        "layers", "num_classes", "in_channels", "stem_width", "stem_type", "avg_down", "channels",
        "block_args", "zero_init_residual", "norm_layer", "cardinality", "base_width",
    ]
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY and params[k].default is inspect.Parameter.empty
               for k in ("cardinality", "base_width"))
    assert issubclass(ResNeXtConfig, ResNetConfig) and ResNeXtConfig(**BASE).block == "bottleneck"
    assert [f.name for f in dataclasses.fields(ResNetConfig)] == [
        "block", "layers", "num_classes", "in_channels", "stem_width", "stem_type", "avg_down",
        "channels", "block_args", "zero_init_residual", "norm_layer",
    ]


def test_defaults_and_list_to_tuple() -> None:
    cfg = ResNeXtConfig(**BASE)
    assert (cfg.num_classes, cfg.in_channels, cfg.stem_width, cfg.stem_type, cfg.avg_down) == (1000, 3, 64, None, False)
    assert cfg.layers == (3, 4, 6, 3) and isinstance(cfg.layers, tuple)
    assert cfg.channels == (64, 128, 256, 512) and cfg.block_args == {} and cfg.zero_init_residual is False
    assert cfg.norm_layer is None


def test_configs_compare_by_value_and_own_their_block_args() -> None:
    assert ResNeXtConfig(**BASE) == ResNeXtConfig(layers=(3, 4, 6, 3), cardinality=32, base_width=4)
    assert ResNeXtConfig(**BASE) != ResNeXtConfig(**BASE, num_classes=10)
    given = {"drop_path": 0.1}
    cfg = ResNeXtConfig(**BASE, block_args=given)
    given["drop_path"] = 0.5
    assert cfg.block_args == {"drop_path": 0.1}


@pytest.mark.parametrize(
    "field, value, exc, phrase",
    [
        ("layers", [3, 4, 6], ConfigError, "layers must contain exactly 4 stage depths; got 3: [3, 4, 6]"),
        ("layers", [3, 0, 6, 3], ConfigError, "layers values must be positive integers; got layers[1]=0"),
        ("layers", [3, 4.0, 6, 3], ConfigError, "layers values must be positive integers; got layers[1]=4.0"),
        ("layers", [3, True, 6, 3], ConfigError, "layers values must be positive integers"),
        ("layers", "3463", ConfigTypeError, "layers must contain exactly 4 stage depths; got '3463' (str)"),
        ("channels", [64, 128, 256], ConfigError, "channels must contain exactly 4 stage widths; got 3"),
        ("channels", [64, 0, 256, 512], ConfigError, "channels values must be positive integers; got channels[1]=0"),
        ("cardinality", 0, ConfigError, "cardinality must be greater than 0; got 0"),
        ("base_width", -4, ConfigError, "base_width must be greater than 0; got -4"),
        ("num_classes", 0, ConfigError, "num_classes must be greater than 0; got 0"),
        ("in_channels", 0, ConfigError, "in_channels must be greater than 0; got 0"),
        ("stem_width", 0, ConfigError, "stem_width must be greater than 0; got 0"),
        ("num_classes", "10", ConfigTypeError, "num_classes must be greater than 0 (a positive int); got '10' (str)"),
        ("num_classes", 2.5, ConfigTypeError, "num_classes must be greater than 0 (a positive int); got 2.5 (float)"),
        ("num_classes", True, ConfigTypeError, "num_classes must be greater than 0 (a positive int); got True (bool)"),
        ("stem_type", "wide", ConfigError, "stem_type must be None or 'deep'; got 'wide'"),
        ("block_args", 1, ConfigTypeError, "block_args must be a dictionary of keyword arguments for every block; got 1 (int)"),
        ("avg_down", "yes", ConfigTypeError, "avg_down must be True or False; got 'yes' (str)"),
        ("zero_init_residual", 1, ConfigTypeError, "zero_init_residual must be True or False"),
        ("norm_layer", "LayerNorm", ConfigError, "norm_layer must be one of ['BatchNorm2d', 'FrozenBatchNorm2d', 'SyncBatchNorm']"),
    ],
)
def test_field_errors_start_with_the_original_phrase(field: str, value: object, exc: type, phrase: str) -> None:
    makers = [lambda: ResNeXtConfig(**{**BASE, field: value})]
    if field not in ("cardinality", "base_width"):  # in a ResNetConfig these travel in block_args
        makers.append(lambda: ResNetConfig(**{**RESNET, field: value}))
    for make in makers:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value).startswith(phrase.split(";")[0]) and phrase in str(info.value)
        assert info.value.field == field


def test_error_types_keep_the_builtin_bases() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigTypeError, TypeError)
    with pytest.raises(TypeError, match="block must be a ResNet block name or an nn.Module subclass; got"):
        ResNetConfig(block=object, layers=[2, 2, 2, 2])
    with pytest.raises(ValueError, match="block must be one of 'basic', 'bottleneck', or 'preact_bottleneck'; got 'basik'"):
        ResNetConfig(block="basik", layers=[2, 2, 2, 2])
    with pytest.raises(TypeError, match=r"Conv2d.expansion is None"):
        ResNetConfig(block=nn.Conv2d, layers=[2, 2, 2, 2])


def test_numpy_integers_count_as_ints() -> None:
    cfg = ResNeXtConfig(layers=np.array([3, 4, 6, 3]), cardinality=np.int64(32), base_width=np.int32(4), num_classes=np.int64(10),
                        block_args={"dilation": np.int64(2)})
    assert cfg.layers == (3, 4, 6, 3) and type(cfg.layers[0]) is int and type(cfg.cardinality) is int
    assert cfg.block_args == {"dilation": 2} and type(cfg.block_args["dilation"]) is int
    assert cfg == ResNeXtConfig(**BASE, num_classes=10, block_args={"dilation": 2})


@pytest.mark.parametrize(
    "block, args, phrase",
    [
        ("bottleneck", {"sse": True}, "block_args has unknown key 'sse' for Bottleneck; accepted keys: 'cardinality', 'base_width', "
                                      "'dilation', 'se', 'se_args', 'drop_path'"),
        ("basic", {"cardinality": 32}, "block_args has unknown key 'cardinality' for BasicBlock; accepted keys: 'dilation', 'se'"),
        ("preact_bottleneck", {"se": True}, "block_args has unknown key 'se' for PreActBottleneck"),
        ("bottleneck", {"se_args": {"reduction": 0}}, "block_args['se_args']['reduction'] must be greater than 0; got 0"),
        ("bottleneck", {"se_args": {"ratio": 4}}, "block_args['se_args'] has unknown key 'ratio'; accepted keys: 'reduction', 'divisor'"),
        ("bottleneck", {"se_args": 16}, "block_args['se_args'] must be a dictionary such as {'reduction': 16}; got 16 (int)"),
        ("bottleneck", {"se": "yes"}, "block_args['se'] must be True or False"),
        ("bottleneck", {"drop_path": 1.0}, "block_args['drop_path'] must be a finite number in [0, 1); got 1.0"),
        ("bottleneck", {"drop_path": math.nan}, "block_args['drop_path'] must be a finite number in [0, 1); got nan"),
        ("bottleneck", {"drop_path": "0.1"}, "block_args['drop_path'] must be a number in [0, 1); got '0.1' (str)"),
        ("bottleneck", {"dilation": 0}, "block_args['dilation'] must be greater than 0; got 0"),
        ("bottleneck", {"dilation": 1.5}, "block_args['dilation'] must be greater than 0 (a positive int); got 1.5 (float)"),
    ],
)
def test_block_args_are_checked_against_the_block(block: str, args: dict, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        ResNetConfig(block=block, layers=[1, 1, 1, 1], block_args=args)
    assert phrase in str(info.value) and info.value.field.startswith("block_args")


def test_groups_need_at_least_one_channel_each() -> None:
    with pytest.raises(ConfigError, match=r"cardinality must be no larger than the channels it splits: channels\[0\]=32 with "
                                          r"base_width=1 gives floor\(32 \* 1 / 64\) = 0"):
        ResNetConfig(block="bottleneck", layers=[1, 1, 1, 1], channels=[32, 64, 128, 256], block_args={"cardinality": 64, "base_width": 1})
    ResNetConfig(block="bottleneck", layers=[1, 1, 1, 1], block_args={"cardinality": 64, "base_width": 1})  # one channel each: fine


def test_resnext_block_args_may_not_repeat_its_fields() -> None:
    with pytest.raises(ConfigError, match="block_args must not repeat cardinality"):
        ResNeXtConfig(**BASE, block_args={"cardinality": 8})


def test_resnext_config_is_one_resnet_config() -> None:
    cfg = ResNeXtConfig(**BASE, num_classes=10, stem_type="deep", block_args={"se": True})
    assert cfg.resnet_config() == ResNetConfig(block="bottleneck", layers=[3, 4, 6, 3], num_classes=10, stem_type="deep",
                                               block_args={"cardinality": 32, "base_width": 4, "se": True})


def test_custom_block_class_is_checked_by_its_signature_and_not_serialised() -> None:
    class MyBlock(Bottleneck):
        pass

    class Loose(nn.Module):
        expansion = 1

        def __init__(self, in_channels, channels, stride=1, downsample=None, **kwargs):
            super().__init__()

    assert ResNetConfig(block=MyBlock, layers=[1, 1, 1, 1], block_args={"se": True}).block_class is MyBlock
    assert ResNetConfig(block=Loose, layers=[1, 1, 1, 1], block_args={"anything": 1}).block_args == {"anything": 1}
    with pytest.raises(ConfigError, match="norm_layer: block Loose takes no norm_layer argument"):
        ResNetConfig(block=Loose, layers=[1, 1, 1, 1], norm_layer="FrozenBatchNorm2d")
    with pytest.raises(TypeError, match="custom block class .*MyBlock.* cannot be written as JSON"):
        ResNetConfig(block=MyBlock, layers=[1, 1, 1, 1]).to_json()


@pytest.mark.parametrize(
    "cfg",
    [
        ResNeXtConfig(**BASE, num_classes=10, in_channels=1, stem_type="deep", stem_width=32, block_args={"drop_path": 0.1}),
        ResNetConfig(block="basic", layers=[2, 2, 2, 2], avg_down=True, zero_init_residual=True, norm_layer="FrozenBatchNorm2d"),
        ResNetConfig(block="preact_bottleneck", layers=[1, 1, 1, 1], block_args={"base_width": 128, "dilation": 2}),
    ],
)
def test_json_round_trip_is_exact(cfg: object) -> None:
    again = type(cfg).from_json(cfg.to_json())
    assert again == cfg and type(again) is type(cfg)
    data = cfg.to_dict()
    assert data["model_type"].startswith("lucid.") and data["library_name"] == "lucid"


def test_norm_layer_classes_are_written_by_name() -> None:
    from torchvision.ops import FrozenBatchNorm2d

    cfg = ResNetConfig(block="basic", layers=[1, 1, 1, 1], norm_layer=FrozenBatchNorm2d)
    assert cfg.to_dict()["norm_layer"] == "FrozenBatchNorm2d"
    with pytest.raises(TypeError, match="norm_layer: .* cannot be written as JSON"):
        ResNetConfig(block="basic", layers=[1, 1, 1, 1], norm_layer=lambda c: nn.GroupNorm(1, c)).to_dict()


def test_from_dict_refuses_unknown_missing_and_foreign_fields() -> None:
    data = ResNeXtConfig(**BASE).to_dict()
    with pytest.raises(TypeError, match=r"no field\(s\) \['depth'\]"):
        ResNeXtConfig.from_dict({**data, "depth": 50})
    with pytest.raises(TypeError, match=r"needs the field\(s\) \['layers'\]"):
        ResNeXtConfig.from_dict({k: v for k, v in data.items() if k != "layers"})
    with pytest.raises(ValueError, match="model_type 'lucid.resnext' does not match ResNetConfig"):
        ResNetConfig.from_dict(data)


def test_folders_of_older_lucid_migrate() -> None:
    old_resnet = {"model_type": "resnet", "block": "bottleneck", "layers": [3, 4, 6, 3], "cardinality": 1, "base_width": 128,
                  "block_args": {"se_reduction": 16}, "zero_init_residual": False}
    assert ResNetConfig.from_dict(old_resnet) == ResNetConfig(
        block="bottleneck", layers=[3, 4, 6, 3], block_args={"base_width": 128, "se": True, "se_args": {"reduction": 16, "divisor": 1}}
    )
    old_resnext = {"model_type": "resnext", **BASE, "block_args": {"drop_path": 0.1}}
    assert ResNeXtConfig.from_dict(old_resnext) == ResNeXtConfig(**BASE, block_args={"drop_path": 0.1})


def test_save_json_is_atomic_and_readable(tmp_path) -> None:
    cfg = ResNeXtConfig(**BASE)
    path = tmp_path / "sub" / "config.json"
    cfg.save_json(path)
    assert ResNeXtConfig.from_json(path.read_text()) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]
