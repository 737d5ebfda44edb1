"""lucid's architectures: configs, model classes, presets and the registry."""
from __future__ import annotations

from .config import ModelConfig
from .hub import from_pretrained
from .registry import create_model, list_models, register_model
from .resnet import (
    ResNet,
    ResNetConfig,
    resnet_18,
    resnet_34,
    resnet_50,
    resnet_101,
    resnet_152,
    wide_resnet_50,
    wide_resnet_101,
)
from .resnext import (
    ResNeXt,
    ResNeXtConfig,
    resnext_50_32x4d,
    resnext_101_32x4d,
    resnext_101_32x8d,
    resnext_101_32x16d,
    resnext_101_32x32d,
    resnext_101_64x4d,
)

__all__ = [
    "ModelConfig",
    "ResNet",
    "ResNetConfig",
    "ResNeXt",
    "ResNeXtConfig",
    "create_model",
    "from_pretrained",
    "list_models",
    "register_model",
    "resnet_18",
    "resnet_34",
    "resnet_50",
    "resnet_101",
    "resnet_152",
    "wide_resnet_50",
    "wide_resnet_101",
    "resnext_50_32x4d",
    "resnext_101_32x4d",
    "resnext_101_32x8d",
    "resnext_101_32x16d",
    "resnext_101_32x32d",
    "resnext_101_64x4d",
]
