"""The public weights API: published pretrained weights, checkpoint loading, layout conversion and safe file I/O.

It gathers :mod:`lucid.checkpoints` (file I/O, conversion, download) and the per-preset
registry of :mod:`lucid.models.published` under one name.
"""
from __future__ import annotations

from ..checkpoints import (
    LAYOUTS,
    CheckpointError,
    PretrainedWeights,
    cache_dir,
    convert,
    detect_layout,
    hub_cache_dir,
    load_checkpoint,
    load_file,
    load_into,
    save_file,
    strip_prefix,
)
from ..models.published import (
    download,
    info,
    list_pretrained,
    load_pretrained,
    register_pretrained,
    temporary_registrations,
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
    "temporary_registrations",
]
