"""Checkpoints, below the models: safe tensor-file I/O, the torchvision/timm/lucid layouts, download and verification.

Nothing here knows a model class; the model layer calls it directly to save, load and fetch weights.
"""
from __future__ import annotations

from ..core.errors import CheckpointError
from .conversion import LAYOUTS, convert, detect_layout
from .download import HUB_WEIGHTS_FILE, PretrainedWeights, cache_dir, fetch, hub_cache_dir, sha256_of
from .io import load_file, load_into, save_file, strip_prefix
from .loading import load_checkpoint

__all__ = [
    "HUB_WEIGHTS_FILE",
    "LAYOUTS",
    "CheckpointError",
    "PretrainedWeights",
    "cache_dir",
    "convert",
    "detect_layout",
    "fetch",
    "hub_cache_dir",
    "load_checkpoint",
    "load_file",
    "load_into",
    "save_file",
    "sha256_of",
    "strip_prefix",
]
