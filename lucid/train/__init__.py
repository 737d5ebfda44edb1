"""Training, evaluation and prediction for lucid models (``lucid train`` / ``eval`` / ``predict``).

``lucid.train.step`` holds the single optimisation step shared with ``lucid bench``;
``lucid.train.engine`` the loop; ``lucid.train.data`` the datasets; ``lucid.train.distributed``
the DDP plumbing; ``lucid.train.predict`` evaluation and prediction from a saved run.

Example:
    >>> from lucid.train import TrainConfig, fit
    >>> summary = fit(TrainConfig(epochs=15))  # doctest: +SKIP
"""
from __future__ import annotations

from .engine import TrainConfig, evaluate, fit, load_state
from .predict import load_trained, predict_images
from .step import fast_defaults, train_step

__all__ = ["TrainConfig", "fit", "evaluate", "load_state", "load_trained", "predict_images", "fast_defaults", "train_step"]
