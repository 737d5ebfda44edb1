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
from torch.utils.data import ConcatDataset, DataLoader

from ..checkpoints.io import load_file, load_into
from ..checkpoints.train_state import STATE_NAME, load_state
from ..core.checks import check_image_size, describe, is_int, printable
from ..core.console import warn
from ..core.constants import MAX_INT
from ..core.errors import CheckpointError, ConfigError, OptionError
from ..data import ImageDataset, Source, detect_format, eval_dataset, make_splits, open_source
from ..data.folder import (
    IMAGE_EXTENSIONS,
    DataError,
    ImageFileDataset,
    Preprocessing,
    collate_skipping,
    decode_image_file,
    digits_splits,
    eval_transform,
    image_files,
)
from ..models import create_model, from_pretrained
from ..models.auto import model_from_config
from ..models.saving import CONFIG_NAME
from ..optimize import optimize_for_inference
from .evaluation import evaluate
from .preprocessing import resolve_preprocessing
from .selection import digits_selection, folder_selection

__all__ = ["INFERENCE_DTYPES", "Trained", "calibration_batches", "evaluate_digits", "evaluate_folder", "evaluate_recorded", "load_trained", "optimized", "predict_images"]

INFERENCE_DTYPES = ("float32", "bfloat16", "int8")
NON_FINITE = "the model's outputs are not finite (NaN or infinite weights, or an extreme mean/std); its predictions mean nothing"


@dataclass
class Trained:
    """A model ready for inference, with what is needed to feed it and name its outputs."""

    model: nn.Module
    class_names: list[str]
    preprocessing: Preprocessing
    dataset: dict[str, Any]
    note: str = ""  # where the preprocessing came from, when it was not saved with the model
    calibration_images: int | None = None  # how many images calibrated an int8 model


def load_trained(path: str | os.PathLike[str], model_name: str | None = None, overrides: dict[str, Any] | None = None,
                 image_size: int | None = None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 preprocess: str | None = None) -> Trained:
    """Load a trained model from a run folder, a ``last.pt``, or a weight file plus ``model_name``.

    A run folder or ``last.pt`` already says which architecture it is; a bare weight file needs
    ``model_name`` (and ``overrides``), and is refused with the mismatching keys when it belongs to
    another architecture. A model saved without its preprocessing needs ``image_size`` with
    ``mean``/``std`` or a ``preprocess`` preset, unless it was loaded from published weights
    (see :func:`~lucid.inference.preprocessing.resolve_preprocessing`).
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
    saved = metadata.get("class_names") or [str(i) for i in range(num_classes)]
    if not all(isinstance(c, str) for c in saved):
        raise CheckpointError(f"{path}: damaged metadata: class_names must be strings, got {describe(saved, 60)}")
    class_names = list(saved)
    if len(class_names) != num_classes:
        raise CheckpointError(f"{path}: {len(class_names)} class names saved for a model with {num_classes} classes")
    prep, note = resolve_preprocessing(metadata, int(model.config.in_channels), str(path), image_size, mean, std, preprocess)
    return Trained(model, class_names, prep, dict(metadata.get("dataset") or {}), note)


def _loader_kw(workers: int) -> dict[str, Any]:
    return {"num_workers": workers, "collate_fn": collate_skipping, "persistent_workers": False}


def evaluate_folder(trained: Trained, data: str | os.PathLike[str] | None, *, device: torch.device, amp_dtype: torch.dtype | None,
                    channels_last: bool, batch_size: int = 64, workers: int = 0, confusion: bool = False,
                    split: str | None = None) -> dict[str, Any]:
    """Loss and top-1/top-5 accuracy on the images :func:`~lucid.inference.selection.folder_selection` picks.

    By default that is the run's own validation split (``data`` None or the folder it was trained
    on), or ``data/val`` of another folder, or all of another folder without one; ``split``
    (``"val"``, ``"train"``, ``"all"``) chooses. WebDataset shards and Hugging Face datasets are
    scored on their validation part (or all of them). The result's ``"images"`` says which were
    scored. Classes are matched to the model's by name; skipped (unreadable) images are counted.
    ``confusion`` adds the confusion matrix (see :func:`~lucid.inference.evaluation.evaluate`).
    """
    if data is not None and detect_format(str(data)) != "folder":
        dataset = eval_dataset(open_source(Path(data)), trained.class_names, trained.preprocessing)
        described = f"the validation part of {data} (all of it when it has none)"
    else:
        samples, folder_classes, described = folder_selection(trained.dataset, data, split, trained.preprocessing)
        unknown = sorted(set(folder_classes) - set(trained.class_names))
        if unknown:
            raise DataError(f"--data: class folder(s) {unknown} in {data} are not classes of the model (it knows {trained.class_names})")
        remap = {i: trained.class_names.index(name) for i, name in enumerate(folder_classes)}
        samples = [(p, remap[t]) for p, t in samples]
        dataset = ImageFileDataset(samples, trained.preprocessing.channels, eval_transform(trained.preprocessing))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **_loader_kw(workers))
    return {**_run_eval(trained, loader, device, amp_dtype, channels_last, confusion), "images": described}


def evaluate_digits(trained: Trained, *, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool,
                    batch_size: int = 128, confusion: bool = False, split: str | None = None) -> dict[str, Any]:
    """Accuracy on the digits the model was trained on: its validation split (same seed and fraction) by default."""
    described = digits_selection(trained.dataset, split)
    train, val, _, _ = digits_splits(trained.preprocessing.image_size, *digits_split(trained), augment=False)
    dataset = {"val": val, "train": train, "all": ConcatDataset([train, val])}[split or "val"]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **_loader_kw(0))
    return {**_run_eval(trained, loader, device, amp_dtype, channels_last, confusion), "images": described}


def evaluate_recorded(trained: Trained, *, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool,
                      batch_size: int = 64, workers: int = 0, confusion: bool = False, split: str | None = None) -> dict[str, Any]:
    """Accuracy on the validation part of the data the model was trained on, as its run recorded it: the
    digits' split, the ``val`` part of its data, or the same ``--val-split`` (fraction and seed) of it.

    Shards and Hugging Face datasets are scored on that validation part only; to score other
    images, name them with ``--data``.
    """
    if trained.dataset.get("name") == "digits" or "path" not in trained.dataset:
        return evaluate_digits(trained, device=device, amp_dtype=amp_dtype, channels_last=channels_last, batch_size=batch_size,
                               confusion=confusion, split=split)
    if split not in (None, "val"):
        raise OptionError(f"--split {split}: a run on {trained.dataset.get('name')} data is scored on its validation part only; "
                          "name the images to score with --data")
    source = _recorded_source(trained)
    val_split, seed = trained.dataset.get("val_split"), trained.dataset.get("seed", 0)
    if "all" in source.parts and val_split is not None:
        if not isinstance(val_split, float) or not is_int(seed) or seed < 0:
            raise CheckpointError(f"damaged metadata: the validation split needs val_split in (0, 1) and seed >= 0, got {val_split!r} and {seed!r}")
        dataset = make_splits(source, val_split, seed, trained.preprocessing).val
    else:
        dataset = eval_dataset(source, trained.class_names, trained.preprocessing)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **_loader_kw(workers))
    described = f"the validation part of {trained.dataset['path']}, as the run recorded it"
    return {**_run_eval(trained, loader, device, amp_dtype, channels_last, confusion), "images": described}


def _recorded_source(trained: Trained) -> Source:
    """The data source a model's run recorded (its location, and the split and columns of a Hugging Face dataset)."""
    options = {key: trained.dataset.get(key) for key in ("split", "image_column", "label_column") if isinstance(trained.dataset.get(key), str)}
    return open_source(str(trained.dataset["path"]), **options)


def digits_split(trained: Trained) -> tuple[float, int]:
    """The validation fraction and seed of a digits model's split (damaged metadata is refused)."""
    if trained.dataset.get("name") != "digits":
        raise DataError("--data is needed: this model was not trained on the bundled digits")
    fraction, seed = trained.dataset.get("val_fraction"), trained.dataset.get("seed")
    if not isinstance(fraction, float) or not 0 < fraction < 1 or not is_int(seed) or not 0 <= seed <= MAX_INT:
        raise CheckpointError(f"damaged metadata: the digits split needs val_fraction in (0, 1) and seed in [0, 2**63), got {fraction!r} and {seed!r}")
    return fraction, seed


def calibration_batches(trained: Trained, batches: int = 8, batch_size: int = 32) -> list[torch.Tensor]:
    """Up to ``batches`` batches of (at most ``batch_size``) training images of the model, preprocessed as
    for evaluation, to calibrate int8.

    The images are spread over the whole training split (every class, not the first ones in
    file order). A training set smaller than ``batches * batch_size`` gives what there is, in up
    to ``batches`` batches; none at all is a DataError.
    """
    limit = batches * batch_size
    if trained.dataset.get("name") == "digits":
        train, _, _, _ = digits_splits(trained.preprocessing.image_size, *digits_split(trained), augment=False)
        images = [train[i][0] for i in range(0, len(train), max(1, len(train) // limit))][:limit]
    else:
        dataset = _training_dataset(trained)
        picked = (dataset[i] for i in range(0, len(dataset), max(1, len(dataset) // limit)))
        images = [item[0] for item in picked if not isinstance(item, str)][:limit]
    if not images:
        raise DataError("--dtype int8 calibrates on the training images, but none of them could be read")
    size = max(1, -(-len(images) // batches))
    return [torch.stack(images[i:i + size]) for i in range(0, len(images), size)]


def _training_dataset(trained: Trained) -> ImageDataset:
    """The training images of the data a model was trained on (in any format lucid.data reads), preprocessed
    for evaluation: its ``train`` part, or what its recorded ``--val-split`` left for training."""
    try:
        source = _recorded_source(trained)
    except (DataError, KeyError) as e:
        location = trained.dataset.get("path")
        raise DataError(f"--dtype int8 calibrates on the training images, but the model's data {location!r} cannot be read ({e})") from None
    prep = trained.preprocessing
    val_split, seed = trained.dataset.get("val_split"), trained.dataset.get("seed", 0)
    if "all" in source.parts and isinstance(val_split, float) and is_int(seed) and seed >= 0:
        dataset = make_splits(source, val_split, seed, prep).train
        dataset.transform = eval_transform(prep)
        return dataset
    records = source.parts["train" if "train" in source.parts else "all"]
    return ImageDataset(records, eval_transform(prep), prep.channels)


def optimized(trained: Trained, dtype: str, device: torch.device) -> Trained:
    """``trained`` with its model run through :func:`lucid.optimize_for_inference` at ``dtype`` (float32, bfloat16, int8).

    int8 calibrates on the model's training images, as many as there are up to 256; the result's
    ``calibration_images`` says how many were used.
    """
    if dtype not in INFERENCE_DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(INFERENCE_DTYPES)}, got {dtype!r}", "dtype")
    model = trained.model.to(device)
    used = None
    if dtype == "int8":
        batches = calibration_batches(trained)
        used = sum(len(b) for b in batches)
        fast = optimize_for_inference(model, dtype=torch.int8, calibration=batches, calibration_batches=len(batches))
    else:
        fast = optimize_for_inference(model, dtype=getattr(torch, dtype))
    return Trained(fast, trained.class_names, trained.preprocessing, trained.dataset, trained.note, calibration_images=used)


def _run_eval(trained: Trained, loader: Any, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool,
              confusion: bool = False) -> dict[str, Any]:
    def warn_all(paths: list[str]) -> None:
        for p in paths:
            warn(f"skipping unreadable image {printable(p)}")

    model = trained.model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return evaluate(model, loader, device, amp_dtype=amp_dtype, channels_last=channels_last, on_skip=warn_all, confusion=confusion)


def _expand_folders(paths: Sequence[str], image_files: Any) -> list[str]:
    """``paths`` with each folder replaced by the image files under it (a folder without any stays, to be reported)."""
    expanded: list[str] = []
    for path in paths:
        found = image_files(path) if Path(path).is_dir() else []
        expanded += found or [path]
    return expanded


@torch.no_grad()
def predict_images(trained: Trained, paths: Sequence[str], *, top_k: int, device: torch.device,
                   amp_dtype: torch.dtype | None) -> list[dict[str, Any]]:
    """Top-``top_k`` classes and probabilities per image; an unreadable image gets an ``"error"`` entry instead.

    A folder among ``paths`` stands for every image file under it (recursively, as for training).
    """
    if top_k < 1:
        raise ConfigError(f"top_k must be a positive int, got {top_k}", "top_k")
    transform = eval_transform(trained.preprocessing)
    model = trained.model.to(device).eval()
    results: list[dict[str, Any]] = []
    for path in _expand_folders(paths, image_files):
        if Path(path).is_dir():
            results.append({"image": path, "error": f"a folder without image files ({', '.join(IMAGE_EXTENSIONS)})"})
            continue
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
        if not torch.isfinite(logits).all():
            results.append({"image": path, "error": NON_FINITE})
            continue
        probs = logits.softmax(dim=1)[0]
        values, indices = probs.topk(min(top_k, probs.numel()))
        results.append({
            "image": path,
            "top": [{"class": trained.class_names[i], "index": i, "probability": v} for v, i in zip(values.tolist(), indices.tolist())],
        })
    return results
