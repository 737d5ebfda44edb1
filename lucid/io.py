"""Older import path of :mod:`lucid.checkpoints.io` (safe reading and writing of tensor files)."""
from __future__ import annotations

from .checkpoints.io import CheckpointError, load_file, load_into, save_file, strip_prefix

__all__ = ["CheckpointError", "load_file", "load_into", "save_file", "strip_prefix"]
