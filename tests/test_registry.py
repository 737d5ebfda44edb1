"""The registry and the preset functions."""
from __future__ import annotations

import fnmatch

import pytest
import torch

from lucid import models


def test_list_models_is_in_natural_order_and_filters() -> None:
    names = models.list_models()
    assert names[:8] == ["resnet_18", "resnet_34", "resnet_50", "resnet_101", "resnet_152", "resnet_200", "resnet_269", "resnet_1001"]
    assert names[8:] == ["resnext_50_32x4d", "resnext_101_32x4d", "resnext_101_32x8d", "resnext_101_32x16d",
                         "resnext_101_32x32d", "resnext_101_64x4d", "wide_resnet_50", "wide_resnet_101"]
    assert set(names) == set(models.PRESETS)
    resnext = models.list_models("resnext*")
    assert resnext == [n for n in names if fnmatch.fnmatch(n, "resnext*")] and len(resnext) == 6
    assert models.list_models("nothing*") == []


def test_create_model_forwards_arguments_to_the_config() -> None:
    with torch.device("meta"):
        model = models.create_model("resnext_50_32x4d", num_classes=10, in_channels=1, stem_type="deep", stem_width=32)
    expected = models.ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4, num_classes=10, in_channels=1, stem_type="deep", stem_width=32)
    assert isinstance(model, models.ResNeXt) and model.config == expected


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnext50_32x4d'; did you mean 'resnext_50_32x4d'"):
        models.create_model("resnext50_32x4d")
    with pytest.raises(ValueError, match=r"unknown model 'resnext50'; did you mean 'resnext_50_32x4d'"):
        models.create_model("resnext50")
    with pytest.raises(ValueError, match=r"unknown model 'ResNet-18'; did you mean 'resnet_18'"):
        models.create_model("ResNet-18")
    with pytest.raises(ValueError, match=r"unknown model 'vgg16' \(see lucid.models.list_models\(\)\)"):
        models.create_model("vgg16")


@pytest.mark.parametrize("kwargs", [{"layers": [1, 1, 1, 1]}, {"cardinality": 8}, {"base_width": 8},
                                    {"block_args": {"cardinality": 8}}])
def test_resnext_presets_refuse_their_defining_fields(kwargs: dict) -> None:
    with pytest.raises(TypeError, match=r"factory variants do not allow overriding preset layers, cardinality, or base_width: "
                                        r"resnext_50_32x4d\(\) fixes layers=\[3, 4, 6, 3\], cardinality=32, base_width=4"):
        models.resnext_50_32x4d(**kwargs)


def test_resnet_presets_refuse_block_and_layers_and_point_cardinality_to_block_args() -> None:
    with pytest.raises(TypeError, match=r"factory variants do not allow overriding preset block or layers: resnet_50\(\) fixes "
                                        r"block='bottleneck', layers=\[3, 4, 6, 3\] and got block"):
        models.resnet_50(block="basic")
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['cardinality'\].*go in block_args"):
        models.resnet_50(cardinality=32)


def test_presets_merge_block_args_over_their_own() -> None:
    with torch.device("meta"):
        wide = models.wide_resnet_50(block_args={"dilation": 1, "drop_path": 0.1})
        grouped = models.resnet_50(block_args={"cardinality": 32, "base_width": 4})
    assert wide.config.block_args == {"base_width": 128, "dilation": 1, "drop_path": 0.1}
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(grouped) == models.PRESETS["resnext_50_32x4d"].params


def test_presets_refuse_unknown_arguments() -> None:
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['depth'\]"):
        models.resnet_18(depth=3)


def test_presets_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="num_classes must be greater than 0; got 0"):
        models.resnet_18(num_classes=0)


def test_registering_a_duplicate_name_is_refused() -> None:
    def resnet_18() -> None:  # noqa: D401 - same name as a preset
        return None

    with pytest.raises(ValueError, match="already registered"):
        models.register_model(resnet_18)
