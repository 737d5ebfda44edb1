"""Older import path of :mod:`lucid.checkpoints.conversion` (torchvision/timm/lucid state-dict layouts)."""
from __future__ import annotations

from ..checkpoints.conversion import LAYOUTS, convert, detect_layout

__all__ = ["LAYOUTS", "convert", "detect_layout"]
