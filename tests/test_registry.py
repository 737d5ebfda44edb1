"""The registry and the preset functions."""
from __future__ import annotations

import fnmatch

import pytest
import torch

from lucid import models


def test_list_models_is_sorted_and_filters() -> None:
    names = models.list_models()
    assert names == sorted(names) and len(names) == 13
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


@pytest.mark.parametrize("field, value", [("layers", [1, 1, 1, 1]), ("cardinality", 8), ("base_width", 8)])
def test_presets_refuse_their_defining_fields(field: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"resnext_50_32x4d\(\) fixes {field}="):
        models.resnext_50_32x4d(**{field: value})


def test_resnet_presets_refuse_block_and_cardinality() -> None:
    with pytest.raises(TypeError, match=r"resnet_50\(\) fixes block='bottleneck'"):
        models.resnet_50(block="basic")
    with pytest.raises(TypeError, match=r"resnet_50\(\) fixes cardinality=1"):
        models.resnet_50(cardinality=32)


def test_presets_refuse_unknown_arguments() -> None:
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['depth'\]"):
        models.resnet_18(depth=3)


def test_presets_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        models.resnet_18(num_classes=0)


def test_registering_a_duplicate_name_is_refused() -> None:
    def resnet_18() -> None:  # noqa: D401 - same name as a preset
        return None

    with pytest.raises(ValueError, match="already registered"):
        models.register_model(resnet_18)
