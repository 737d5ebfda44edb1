"""Training, evaluation and prediction for lucid models (``lucid train`` / ``eval`` / ``predict``).

``lucid.train.step`` holds the single optimisation step shared with ``lucid bench``.
"""
from __future__ import annotations

from .step import fast_defaults, train_step

__all__ = ["fast_defaults", "train_step"]
