"""``lucid eval`` and ``lucid predict``: a trained model on an image folder, or on single images.

A trained model is a ``lucid train`` output folder (a ``save_pretrained`` folder with the class
names and preprocessing in its metadata), a ``last.pt`` training state, or a bare weight file
together with the preset it belongs to.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .data import DataError, Preprocessing, default_preprocessing

__all__ = ["Trained", "load_trained", "evaluate_folder", "evaluate_digits", "predict_images"]


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
    from ..models import create_model, from_pretrained
    from ..models.hub import CONFIG_NAME, model_from_config
    from ..errors import CheckpointError
    from ..io import load_file, load_into
    from .engine import STATE_NAME, load_state

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint")
    if model_name is not None and path.is_dir():
        raise ValueError("--model applies to bare weight files; a run folder already records its architecture")
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
    class_names = [str(c) for c in metadata.get("class_names") or range(num_classes)]
    if len(class_names) != num_classes:
        raise CheckpointError(f"{path}: {len(class_names)} class names saved for a model with {num_classes} classes")
    if "preprocessing" in metadata:
        prep = Preprocessing.from_dict(metadata["preprocessing"])
        if image_size is not None:
            prep.image_size = image_size
    else:
        prep = default_preprocessing(image_size or 224, int(model.config.in_channels))
    return Trained(model, class_names, prep, dict(metadata.get("dataset") or {}))


def _loader_kw(workers: int) -> dict[str, Any]:
    from .data import collate_skipping

    return {"num_workers": workers, "collate_fn": collate_skipping, "persistent_workers": False}


def evaluate_folder(trained: Trained, data: str | os.PathLike[str], *, device: torch.device, amp_dtype: torch.dtype | None,
                    channels_last: bool, batch_size: int = 64, workers: int = 0) -> dict[str, Any]:
    """Loss and top-1/top-5 accuracy on ``data/val`` (when present) or on ``data`` as one class tree.

    Folder classes are matched to the model's classes by name; skipped (unreadable) images are counted.
    """
    from torch.utils.data import DataLoader

    from .data import ImageFileDataset, eval_transform, scan_class_folders

    root = Path(data)
    root = root / "val" if (root / "val").is_dir() else root
    folder_classes, samples = scan_class_folders(root)
    unknown = sorted(set(folder_classes) - set(trained.class_names))
    if unknown:
        raise DataError(f"--data: class folder(s) {unknown} in {root} are not classes of the model (it knows {trained.class_names})")
    remap = {i: trained.class_names.index(name) for i, name in enumerate(folder_classes)}
    samples = [(p, remap[t]) for p, t in samples]
    dataset = ImageFileDataset(samples, trained.preprocessing.channels, eval_transform(trained.preprocessing))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, **_loader_kw(workers))
    return _run_eval(trained, loader, device, amp_dtype, channels_last)


def evaluate_digits(trained: Trained, *, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool,
                    batch_size: int = 128) -> dict[str, Any]:
    """Accuracy on the validation split of the digits the model was trained on (same seed and fraction)."""
    from torch.utils.data import DataLoader

    from .data import digits_splits

    if trained.dataset.get("name") != "digits":
        raise DataError("--data is needed: this model was not trained on the bundled digits")
    _, val, _, _ = digits_splits(trained.preprocessing.image_size, trained.dataset["val_fraction"], trained.dataset["seed"], augment=False)
    loader = DataLoader(val, batch_size=batch_size, shuffle=False, **_loader_kw(0))
    return _run_eval(trained, loader, device, amp_dtype, channels_last)


def _run_eval(trained: Trained, loader: Any, device: torch.device, amp_dtype: torch.dtype | None, channels_last: bool) -> dict[str, Any]:
    from .engine import warn, evaluate

    def on_skip(paths: list[str]) -> None:
        for p in paths:
            warn(f"skipping unreadable image {p}")

    model = trained.model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return evaluate(model, loader, device, amp_dtype=amp_dtype, channels_last=channels_last, on_skip=on_skip)


@torch.no_grad()
def predict_images(trained: Trained, paths: Sequence[str], *, top_k: int, device: torch.device,
                   amp_dtype: torch.dtype | None) -> list[dict[str, Any]]:
    """Top-``top_k`` classes and probabilities per image; an unreadable image gets an ``"error"`` entry instead."""
    from .data import decode_image_file, eval_transform

    if top_k < 1:
        raise ValueError(f"--top-k must be a positive int, got {top_k}")
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
