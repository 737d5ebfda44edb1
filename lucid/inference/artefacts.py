"""Exported artefacts (``.onnx``, OpenVINO ``.xml``, ExecuTorch ``.pte``, ``torch.export`` ``.pt2``) as trained
models: ``lucid eval`` and ``lucid predict`` run them in their own runtime, with the class names and
preprocessing they carry, so users evaluate exactly what they deploy. Also the run's own validation
images, as batches, for ``lucid export --verify``."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..core.checks import is_int
from ..core.errors import CheckpointError, DataError
from ..data.folder import ImageFileDataset, collate_skipping, digits_splits, eval_transform, scan_class_folders
from ..export import ARTEFACT_SUFFIXES, Runner, load_runner, read_metadata
from .predict import Trained, digits_split
from .preprocessing import resolve_preprocessing

__all__ = ["ArtefactModel", "is_artefact", "load_artefact", "validation_batches"]


def is_artefact(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an exported artefact (by its suffix) rather than a run or checkpoint."""
    return Path(path).suffix.lower() in ARTEFACT_SUFFIXES


class ArtefactModel(nn.Module):
    """An artefact's runtime as a module: ``forward(images)`` runs the artefact and returns float32 logits
    on the images' device. It has no parameters; the runtime runs on the CPU."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.runner(images.float()).to(images.device)


def _class_names(metadata: dict[str, Any], config: dict[str, Any] | None, source: str) -> list[str]:
    names = metadata.get("class_names")
    count = (config or {}).get("num_classes")
    if names is None:
        if not is_int(count) or not 0 < count <= 1_000_000:
            raise CheckpointError(f"{source}: carries neither class names nor a config with num_classes")
        return [str(i) for i in range(count)]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{source}: damaged metadata (class_names must be a list of strings)")
    if is_int(count) and len(names) != count:
        raise CheckpointError(f"{source}: {len(names)} class names saved for a model with {count} classes")
    return names


def _check_size(runner: Runner, size: int, source: str) -> None:
    """Refuse a preprocessing size that the artefact's fixed input cannot take."""
    fixed = [d for d in runner.input_shape[2:] if isinstance(d, int)]
    if fixed and any(d != size for d in fixed):
        raise CheckpointError(f"{source}: exported for {runner.input_shape[2:]} px images, but the preprocessing asks for {size} px; "
                              f"export again with --dynamic-size, or leave --image-size out")


def load_artefact(path: str | os.PathLike[str], image_size: int | None = None, mean: Sequence[float] | None = None,
                  std: Sequence[float] | None = None, preprocess: str | None = None) -> Trained:
    """An exported artefact loaded in its runtime, as a :class:`Trained` that ``evaluate_*`` and
    ``predict_images`` take. Its class names and preprocessing come from the artefact's metadata
    (:func:`lucid.export.read_metadata`), else from the options, as for :func:`load_trained`."""
    source = str(path)
    info = read_metadata(path)
    runner = load_runner(path)
    metadata, config = info["metadata"], info["config"]
    channels = runner.input_shape[1] if isinstance(runner.input_shape[1], int) else int((config or {}).get("in_channels", 3))
    prep, note = resolve_preprocessing(metadata, channels, source, image_size, mean, std, preprocess)
    _check_size(runner, prep.image_size, source)
    dataset = metadata.get("dataset") or {}
    if not isinstance(dataset, dict):
        raise CheckpointError(f"{source}: damaged metadata (dataset must be a dict)")
    return Trained(ArtefactModel(runner), _class_names(metadata, config, source), prep, dict(dataset), note)


def _folder_root(trained: Trained, data: str | os.PathLike[str] | None) -> Path:
    root = Path(data) if data is not None else Path(str(trained.dataset.get("path", "")))
    if not root.is_dir():
        raise DataError(f"--data: the validation images are not there ({str(root)!r}); give --data DIR")
    return root


def validation_batches(trained: Trained, data: str | os.PathLike[str] | None = None, batch_size: int = 32,
                       limit: int = 2048) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The model's validation images (at most ``limit``), preprocessed, as ``(images, targets)`` batches.

    Digits models use their validation split; image-folder models ``DIR/val`` of the folder they were
    trained on (or of ``data``), else that folder as one class tree. Unreadable images are skipped.
    """


    if data is None and trained.dataset.get("name") == "digits":
        _, dataset, _, _ = digits_splits(trained.preprocessing.image_size, *digits_split(trained), augment=False)
    else:
        root = _folder_root(trained, data)
        root = root / "val" if (root / "val").is_dir() else root
        classes, samples = scan_class_folders(root)
        unknown = sorted(set(classes) - set(trained.class_names))
        if unknown:
            raise DataError(f"--data: class folder(s) {unknown} in {root} are not classes of the model")
        samples = [(p, trained.class_names.index(classes[t])) for p, t in samples]
        dataset = ImageFileDataset(samples, trained.preprocessing.channels, eval_transform(trained.preprocessing))
    subset = Subset(dataset, range(min(len(dataset), limit)))
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=collate_skipping)
    return [(b.images, b.targets) for b in loader if b.targets.numel()]
