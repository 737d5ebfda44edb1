"""Published ImageNet weights for the presets: the registry per tag, download, verify, convert, load.

The pieces live below the models so that ``create_model(..., pretrained=True)`` uses them
directly: the registry in :mod:`lucid.models.published`, download and cache in
:mod:`lucid.checkpoints.download`, loading any checkpoint in :mod:`lucid.checkpoints.loading`.
This module gathers them under their public names.
"""
from __future__ import annotations

from ..checkpoints.download import PretrainedWeights, cache_dir, hub_cache_dir
from ..checkpoints.loading import load_checkpoint
from ..core.constants import IMAGENET_MEAN, IMAGENET_STD
from ..models.published import (
    download,
    info,
    list_pretrained,
    load_pretrained,
    register_pretrained,
    temporary_registrations,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PretrainedWeights",
    "cache_dir",
    "download",
    "hub_cache_dir",
    "info",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "register_pretrained",
    "temporary_registrations",
]
