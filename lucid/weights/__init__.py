"""Checkpoints: safe file I/O, torchvision/timm conversion and published pretrained weights."""
from __future__ import annotations

from ..core.errors import CheckpointError
from ..io import load_file, load_into, save_file, strip_prefix
from .conversion import LAYOUTS, convert, detect_layout
from .pretrained import (
    PretrainedWeights,
    cache_dir,
    download,
    hub_cache_dir,
    info,
    list_pretrained,
    load_checkpoint,
    load_pretrained,
    register_pretrained,
)

__all__ = [
    "LAYOUTS",
    "CheckpointError",
    "PretrainedWeights",
    "cache_dir",
    "convert",
    "detect_layout",
    "download",
    "hub_cache_dir",
    "info",
    "list_pretrained",
    "load_checkpoint",
    "load_file",
    "load_into",
    "load_pretrained",
    "register_pretrained",
    "save_file",
    "strip_prefix",
]
