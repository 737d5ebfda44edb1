"""Inference on trained models: load a run or model folder, evaluate it, predict images."""
from __future__ import annotations

from .predict import (
    INFERENCE_DTYPES,
    Trained,
    calibration_batches,
    evaluate_digits,
    evaluate_folder,
    evaluate_recorded,
    load_trained,
    optimized,
    predict_images,
)

__all__ = [
    "INFERENCE_DTYPES",
    "Trained",
    "calibration_batches",
    "evaluate_digits",
    "evaluate_folder",
    "evaluate_recorded",
    "load_trained",
    "optimized",
    "predict_images",
]
