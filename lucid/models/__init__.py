"""lucid's architectures: configs, model classes, blocks, presets and the registry.

Every preset function (``resnet_18`` ... ``resnext_101_64x4d``) is generated from its row in
:data:`lucid.models.presets.PRESETS`.
"""
from __future__ import annotations

from .config import ModelConfig
from .detection import fpn_backbone
from .hub import from_pretrained
from .presets import ENTRY_POINTS, PRESETS, Preset
from .registry import create_model, list_models, register_model
from .resnet import BasicBlock, Bottleneck, PreActBottleneck, ResNet, ResNetConfig
from .resnext import ResNeXt, ResNeXtConfig

globals().update(ENTRY_POINTS)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ModelConfig",
    "PRESETS",
    "PreActBottleneck",
    "Preset",
    "ResNet",
    "ResNetConfig",
    "ResNeXt",
    "ResNeXtConfig",
    "create_model",
    "fpn_backbone",
    "from_pretrained",
    "list_models",
    "register_model",
    *ENTRY_POINTS,
]
