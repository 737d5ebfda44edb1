"""Config validation, normalisation, equality and JSON round-trips."""
from __future__ import annotations

import dataclasses

import pytest
from torch import nn

from lucid.models import ResNetConfig, ResNeXtConfig
from lucid.models.resnet import _Bottleneck

BASE = dict(layers=[3, 4, 6, 3], cardinality=32, base_width=4)


def test_resnext_config_fields_in_specified_order() -> None:
    names = [f.name for f in dataclasses.fields(ResNeXtConfig)]
    assert names == [
        "layers", "cardinality", "base_width", "num_classes", "in_channels", "stem_width",
        "stem_type", "avg_down", "channels", "block_args", "zero_init_residual",
    ]


def test_defaults_and_list_to_tuple() -> None:
    cfg = ResNeXtConfig(**BASE)
    assert (cfg.num_classes, cfg.in_channels, cfg.stem_width, cfg.stem_type, cfg.avg_down) == (1000, 3, 64, None, False)
    assert cfg.layers == (3, 4, 6, 3) and isinstance(cfg.layers, tuple)
    assert cfg.channels == (64, 128, 256, 512) and cfg.block_args == {} and cfg.zero_init_residual is False
    assert ResNeXtConfig(**BASE, channels=[32, 64, 128, 256]).channels == (32, 64, 128, 256)


def test_configs_compare_by_value() -> None:
    assert ResNeXtConfig(**BASE) == ResNeXtConfig(layers=(3, 4, 6, 3), cardinality=32, base_width=4)
    assert ResNeXtConfig(**BASE) != ResNeXtConfig(**BASE, num_classes=10)
    # separate default dicts: mutating one config's block_args cannot leak into another
    a, b = ResNeXtConfig(**BASE), ResNeXtConfig(**BASE)
    a.block_args["drop_path"] = 0.1
    assert b.block_args == {}


@pytest.mark.parametrize("field", ["layers", "channels"])
@pytest.mark.parametrize(
    "value, exc, fragment",
    [
        ([3, 4, 6], ValueError, "exactly 4"),
        ([3, 4, 6, 3, 3], ValueError, "exactly 4"),
        ([3, 0, 6, 3], ValueError, "[1] must be a positive int"),
        ([3, -1, 6, 3], ValueError, "[1] must be a positive int"),
        ([3, 4.0, 6, 3], ValueError, "[1] must be a positive int"),
        ([3, True, 6, 3], ValueError, "[1] must be a positive int"),
        ("3463", TypeError, "sequence of 4 positive ints"),
        (4, TypeError, "sequence of 4 positive ints"),
    ],
)
def test_four_positive_ints(field: str, value: object, exc: type, fragment: str) -> None:
    with pytest.raises(exc) as info:
        ResNeXtConfig(**{**BASE, field: value})
    message = str(info.value)
    assert message.startswith(field) and fragment in message


@pytest.mark.parametrize("field", ["cardinality", "base_width", "num_classes", "in_channels", "stem_width"])
@pytest.mark.parametrize("value, exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("8", TypeError), (True, TypeError), (None, TypeError)])
def test_positive_int_fields(field: str, value: object, exc: type) -> None:
    with pytest.raises(exc) as info:
        ResNeXtConfig(**{**BASE, field: value})
    message = str(info.value)
    assert field in message and repr(value) in message and "positive int" in message
    # the ResNet config applies the same rule
    with pytest.raises(exc, match=field):
        ResNetConfig(block="bottleneck", layers=[3, 4, 6, 3], **{field: value})


@pytest.mark.parametrize("value", ["shallow", "DEEP", "", 1])
def test_stem_type(value: object) -> None:
    with pytest.raises(ValueError) as info:
        ResNeXtConfig(**BASE, stem_type=value)
    assert "stem_type" in str(info.value) and repr(value) in str(info.value) and "'deep'" in str(info.value)


@pytest.mark.parametrize("value", [[("drop_path", 0.1)], "drop_path=0.1", None])
def test_block_args_must_be_a_dict(value: object) -> None:
    with pytest.raises(TypeError, match="block_args must be a dict"):
        ResNeXtConfig(**BASE, block_args=value)


@pytest.mark.parametrize("field", ["avg_down", "zero_init_residual"])
def test_bool_fields(field: str) -> None:
    with pytest.raises(TypeError, match=f"{field} must be a bool"):
        ResNeXtConfig(**BASE, **{field: "yes"})


def test_bottleneck_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"channels\[0\]=8 with base_width=4"):
        ResNeXtConfig(layers=[1, 1, 1, 1], cardinality=4, base_width=4, channels=[8, 16, 32, 64])


def test_resnet_config_block_choices() -> None:
    assert ResNetConfig(block="basic", layers=[2, 2, 2, 2]).block_class.expansion == 1
    with pytest.raises(ValueError, match="block must be one of 'basic', 'bottleneck'; got 'basik'"):
        ResNetConfig(block="basik", layers=[2, 2, 2, 2])
    with pytest.raises(TypeError, match="expansion"):
        ResNetConfig(block=nn.Conv2d, layers=[2, 2, 2, 2])
    with pytest.raises(ValueError, match="block='basic' supports only cardinality=1"):
        ResNetConfig(block="basic", layers=[2, 2, 2, 2], cardinality=32)


def test_custom_block_class_is_accepted_but_not_serialised() -> None:
    class MyBlock(_Bottleneck):
        pass

    cfg = ResNetConfig(block=MyBlock, layers=[1, 1, 1, 1])
    assert cfg.block_class is MyBlock
    with pytest.raises(TypeError, match="custom block class .*MyBlock.* cannot be written as JSON"):
        cfg.to_json()


@pytest.mark.parametrize(
    "cfg",
    [
        ResNeXtConfig(**BASE, num_classes=10, in_channels=1, stem_type="deep", stem_width=32, block_args={"drop_path": 0.1}),
        ResNetConfig(block="basic", layers=[2, 2, 2, 2], avg_down=True, zero_init_residual=True),
    ],
)
def test_json_round_trip_is_exact(cfg: object) -> None:
    again = type(cfg).from_json(cfg.to_json())
    assert again == cfg and type(again) is type(cfg)


def test_from_dict_refuses_unknown_fields_and_other_model_types() -> None:
    data = ResNeXtConfig(**BASE).to_dict()
    with pytest.raises(TypeError, match=r"no field\(s\) \['depth'\]"):
        ResNeXtConfig.from_dict({**data, "depth": 50})
    with pytest.raises(ValueError, match="model_type 'resnext' does not match ResNetConfig"):
        ResNetConfig.from_dict(data)


def test_save_json_is_atomic_and_readable(tmp_path) -> None:
    cfg = ResNeXtConfig(**BASE)
    path = tmp_path / "sub" / "config.json"
    cfg.save_json(path)
    assert ResNeXtConfig.from_json(path.read_text()) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary file left behind
