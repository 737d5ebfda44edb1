"""Older import path of ResNet: its config is in :mod:`lucid.models.configuration_resnet`, its
blocks in :mod:`lucid.models.resnet_blocks`, the model in :mod:`lucid.models.modeling_resnet`."""
from __future__ import annotations

from .configuration_resnet import (
    NORM_LAYERS,
    STEM_TYPES,
    ResNetConfig,
    block_arg_names,
    check_block_args,
    migrate_block_args,
    resolve_norm_layer,
)
from .modeling_resnet import ResNet
from .resnet_blocks import BLOCKS, BasicBlock, Bottleneck, PreActBottleneck

__all__ = [
    "BLOCKS",
    "NORM_LAYERS",
    "STEM_TYPES",
    "BasicBlock",
    "Bottleneck",
    "PreActBottleneck",
    "ResNet",
    "ResNetConfig",
    "block_arg_names",
    "check_block_args",
    "migrate_block_args",
    "resolve_norm_layer",
]
