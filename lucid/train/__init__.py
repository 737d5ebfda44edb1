"""Training, evaluation and prediction for lucid models (``lucid train`` / ``eval`` / ``predict``).

``config`` holds the settings (:class:`TrainConfig`); ``runtime`` the device/precision policy;
``recipe`` the optimizer, schedule, loss, MixUp/CutMix and EMA; ``step`` the single optimisation
step shared with ``lucid bench``; ``epoch`` one epoch; ``evaluation`` the validation;
``state`` the ``last.pt`` format; ``rundir`` the output folder; ``engine`` the run that ties them
together; ``sampler`` which samples each process trains on (resumable mid-epoch); ``faults`` the
hooks that fault-tolerance tests use; ``data`` the datasets; ``distributed`` the DDP plumbing; ``predict`` evaluation and
prediction from a saved run; ``average`` weight averaging; ``plots`` learning curves and confusion matrices.

Example:
    >>> from lucid.train import TrainConfig, fit
    >>> summary = fit(TrainConfig(epochs=15))  # doctest: +SKIP
"""
from __future__ import annotations

from ..inference.predict import load_trained, predict_images
from .config import TrainConfig
from .engine import fit
from .evaluation import evaluate
from .state import load_state
from .step import NonFiniteLossError, fast_defaults, train_step

__all__ = ["NonFiniteLossError", "TrainConfig", "evaluate", "fast_defaults", "fit", "load_state", "load_trained", "predict_images", "train_step"]
