"""lucid's architectures: configs, model classes, blocks, presets and the registry.

Every preset function (``resnet_18`` ... ``resnext_101_64x4d``) is generated from its row in
:data:`lucid.models.presets.PRESETS`.
"""
from __future__ import annotations

from .auto import from_pretrained
from .config import ModelConfig
from .configuration_resnet import ResNetConfig, ResNeXtConfig
from .detection import fpn_backbone
from .modeling_resnet import ResNet, ResNeXt
from .presets import ENTRY_POINTS, PRESETS, Preset
from .registry import create_model, list_models, register_model
from .resnet_blocks import BasicBlock, Bottleneck, PreActBottleneck

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
