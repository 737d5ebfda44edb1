"""Checkpoints: safe file I/O, torchvision/timm conversion and published pretrained weights."""
from __future__ import annotations

from .io import CheckpointError, load_file, load_into, save_file

__all__ = ["CheckpointError", "load_file", "load_into", "save_file"]
