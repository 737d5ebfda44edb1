"""``lucid eval`` and ``lucid predict``: a trained model on an image folder, or on single images.

A trained model is a ``lucid train`` output folder (a ``save_pretrained`` folder with the class
names and preprocessing in its metadata), a ``last.pt`` training state, or a bare weight file
together with the preset it belongs to.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..checkpoints.io import load_file, load_into
from ..checkpoints.train_state import STATE_NAME, load_state
from ..core.checks import check_image_size
from ..core.console import warn
from ..core.errors import CheckpointError, ConfigError
from ..data import detect_format, eval_dataset, open_source
from ..data.folder import (
    DataError,
    ImageFileDataset,
    Preprocessing,
    collate_skipping,
    decode_image_file,
    default_preprocessing,
    digits_splits,
    eval_transform,
    scan_class_folders,
)
from ..models import create_model, from_pretrained
from ..models.auto import model_from_config
from ..models.saving import CONFIG_NAME
from ..optimize import optimize_for_inference
from .evaluation import evaluate

__all__ = ["INFERENCE_DTYPES", "Trained", "calibration_batches", "evaluate_digits", "evaluate_folder", "load_trained", "optimized", "predict_images"]

INFERENCE_DTYPES = ("float32", "bfloat16", "int8")


@dataclass
class Trained:
    """A model ready for inference, with what is needed to feed it and name its outputs."""

    model: nn.Module
    class_names: list[str]
    preprocessing: Preprocessing
    dataset: dict[str, Any]


def load_trained(path: str | os.PathLike[str], model_name: str | None = None, overrides: dict[str, Any] | None = None,
                 image_size: int | None = None) -> Trained:
    """Load a trained model from a run folder, a ``last.pt``, or a weight file plus ``model_name``.

    A run folder or ``last.pt`` already says which architecture it is; a bare weight file needs
    ``model_name`` (and ``overrides``), and is refused with the mismatching keys when it belongs to
    another architecture.
    """
    path = Path(path)
    if image_size is not None:
        check_image_size(image_size)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint")
    if model_name is not None and path.is_dir():
        raise ConfigError("model applies to bare weight files; a run folder already records its architecture", "model")
    metadata: dict[str, Any] = {}
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        model = from_pretrained(path)
        metadata = dict(getattr(model, "metadata", {}) or {})
    elif (path.is_dir() and (path / STATE_NAME).is_file()) or (path.is_file() and model_name is None):
        try:
            state = load_state(path)
        except CheckpointError as e:
            raise CheckpointError(f"{e}; a bare weight file also needs --model NAME") from None
        model = model_from_config(state["model_config"], source=str(path))
        load_into(model, state["model"])
        metadata = dict(state.get("metadata") or {})
    elif path.is_file():
        model = create_model(model_name, **(overrides or {}))
        load_into(model, load_file(path))
    else:
        raise CheckpointError(f"{path}: neither a run folder ({CONFIG_NAME} + weights) nor a checkpoint file")
    model.eval()
    num_classes = int(model.config.num_classes)
    if not isinstance(metadata.get("class_names", []), list) or not isinstance(metadata.get("dataset", {}), dict):
        raise CheckpointError(f"{path}: damaged metadata (class_names must be a list, dataset a dict)")
    class_names = [str(c) for c in metadata.get("class_names") or range(num_classes)]
    if len(class_names) != num_classes:
        raise CheckpointError(f"{path}: {len(class_names)} class names saved for a model with {num_classes} classes")
    if "preprocessing" in metadata:
        prep = Preprocessing.from_dict(metadata["preprocessing"], source=str(path))
        if image_size is not None:
            prep.image_size = image_size
    else:
        prep = default_preprocessing(image_size or 224, int(model.config.in_channels))
    return Trained(model, class_names, prep, dict(metadata.get("dataset") or {}))


def _loader_kw(workers: int) -> dict[str, Any]:
    return {"num_workers": workers, "collate_fn": collate_skipping, "persistent_workers": False}


def evaluate_folder(trained: Trained, data: str | os.PathLike[str], *, device: torch.device, amp_dtype: torch.dtype | None,
                    channels_last: bool, batch_size: int = 64, workers: int = 0, confusion: bool = False) -> dict[str, Any]:
    """Loss and top-1/top-5 accuracy on the validation part of ``data`` (``data/val``, a ``val/`` shard
    folder, a validation split), or on all of it when it has no such part. ``data`` is any ``--data``
    source: image folder, WebDataset shards or Hugging Face dataset.

    Its classes are matched to the model's classes by name; skipped (unreadable) images are
    counted. ``confusion`` adds the confusion matrix (see :func:`~lucid.inference.evaluation.evaluate`).
    """
    root = Path(data)
    if detect_format(str(data)) == "folder" and (root / "val").is_dir():
        root = root / "val"
    dataset = eval_dataset(open_source(root), trained.class_names, trained.preprocessing)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **_loader_kw(workers))
    return _run_eval(trained, loader, device, amp_dtype, channels_last, confusion)


def evaluate_digits(trained: Trained, *, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool,
                    batch_size: int = 128, confusion: bool = False) -> dict[str, Any]:
    """Accuracy on the validation split of the digits the model was trained on (same seed and fraction)."""
    _, val, _, _ = digits_splits(trained.preprocessing.image_size, *_digits_split(trained), augment=False)
    loader = DataLoader(val, batch_size=batch_size, shuffle=False, **_loader_kw(0))
    return _run_eval(trained, loader, device, amp_dtype, channels_last, confusion)


def _digits_split(trained: Trained) -> tuple[float, int]:
    """The validation fraction and seed of a digits model's split (damaged metadata is refused)."""
    if trained.dataset.get("name") != "digits":
        raise DataError("--data is needed: this model was not trained on the bundled digits")
    fraction, seed = trained.dataset.get("val_fraction"), trained.dataset.get("seed")
    if not isinstance(fraction, float) or not 0 < fraction < 1 or not isinstance(seed, int) or seed < 0:
        raise CheckpointError(f"damaged metadata: the digits split needs val_fraction in (0, 1) and seed >= 0, got {fraction!r} and {seed!r}")
    return fraction, seed


def calibration_batches(trained: Trained, batches: int = 8, batch_size: int = 32) -> list[torch.Tensor]:
    """``batches`` batches of (at most ``batch_size``) training images of the model, preprocessed as for
    evaluation, to calibrate int8."""
    if trained.dataset.get("name") == "digits":
        train, _, _, _ = digits_splits(trained.preprocessing.image_size, *_digits_split(trained), augment=False)
        images = [train[i][0] for i in range(min(len(train), batches * batch_size))]
    else:
        root = Path(str(trained.dataset.get("path", "")))
        if not root.is_dir():
            raise DataError(f"--dtype int8 calibrates on the training images, but the model's image folder {str(root)!r} is not there")
        _, samples = scan_class_folders(root / "train" if (root / "train").is_dir() else root)
        transform = eval_transform(trained.preprocessing)
        dataset = ImageFileDataset(samples[: batches * batch_size], trained.preprocessing.channels, transform)
        images = [item[0] for item in dataset if not isinstance(item, str)]
    size = max(1, -(-len(images) // batches))  # a small training set still gives `batches` batches
    return [torch.stack(images[i:i + size]) for i in range(0, len(images), size)]


def optimized(trained: Trained, dtype: str, device: torch.device) -> Trained:
    """``trained`` with its model run through :func:`lucid.optimize_for_inference` at ``dtype`` (float32, bfloat16, int8)."""
    if dtype not in INFERENCE_DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(INFERENCE_DTYPES)}, got {dtype!r}", "dtype")
    model = trained.model.to(device)
    if dtype == "int8":
        fast = optimize_for_inference(model, dtype=torch.int8, calibration=calibration_batches(trained))
    else:
        fast = optimize_for_inference(model, dtype=getattr(torch, dtype))
    return Trained(fast, trained.class_names, trained.preprocessing, trained.dataset)


def _run_eval(trained: Trained, loader: Any, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool,
              confusion: bool = False) -> dict[str, Any]:
    def warn_all(paths: list[str]) -> None:
        for p in paths:
            warn(f"skipping unreadable image {p}")

    model = trained.model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return evaluate(model, loader, device, amp_dtype=amp_dtype, channels_last=channels_last, on_skip=warn_all, confusion=confusion)


@torch.no_grad()
def predict_images(trained: Trained, paths: Sequence[str], *, top_k: int, device: torch.device,
                   amp_dtype: torch.dtype | None) -> list[dict[str, Any]]:
    """Top-``top_k`` classes and probabilities per image; an unreadable image gets an ``"error"`` entry instead."""
    if top_k < 1:
        raise ConfigError(f"top_k must be a positive int, got {top_k}", "top_k")
    transform = eval_transform(trained.preprocessing)
    model = trained.model.to(device).eval()
    results: list[dict[str, Any]] = []
    for path in paths:
        if not Path(path).is_file():
            results.append({"image": path, "error": "no such file"})
            continue
        try:
            image = transform(decode_image_file(path, trained.preprocessing.channels))
        except (OSError, ValueError) as e:
            results.append({"image": path, "error": f"cannot decode image ({' '.join(str(e).split())[:120]})"})
            continue
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(image.unsqueeze(0).to(device)).float()
        probs = logits.softmax(dim=1)[0]
        values, indices = probs.topk(min(top_k, probs.numel()))
        results.append({
            "image": path,
            "top": [{"class": trained.class_names[i], "index": i, "probability": v} for v, i in zip(values.tolist(), indices.tolist())],
        })
    return results
