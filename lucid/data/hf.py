"""Hugging Face ``datasets`` as records: a ``save_to_disk`` folder, parquet or arrow files, or a Hub id in the local cache.

The image column (a ``datasets.Image`` feature, else one named ``image``/``img``/``jpg``) is read
without decoding (``Image(decode=False)``), so the input pipeline decodes the bytes itself at the
size the crop needs. Class names come from the label column's ``ClassLabel``; a string label
column gives the sorted distinct names; rows without a label (None or -1) are skipped and counted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DataError
from ..core.extras import require
from .shards import MAX_CLASSES

__all__ = ["HFRecords", "hf_parts", "load_hf"]

IMAGE_NAMES = ("image", "img", "jpg", "png", "webp")
LABEL_NAMES = ("label", "labels", "cls", "class", "target")
VAL_SPLITS = ("validation", "val", "valid")


def _datasets() -> Any:
    return require("datasets", "data", "--data with a Hugging Face dataset")


def load_hf(spec: str, split: str | None = None) -> Any:
    """A ``Dataset`` or ``DatasetDict`` from a ``save_to_disk`` folder, parquet/arrow file(s) or ``hf:user/name``."""
    datasets = _datasets()
    path = Path(spec)
    try:
        if spec.startswith("hf:"):
            # Resolved by datasets through the local cache; HF_HUB_OFFLINE=1 forbids any download.
            return datasets.load_dataset(spec[3:], split=split)
        if path.suffix == ".arrow":
            return datasets.Dataset.from_file(str(path))
        if path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
            pq = require("pyarrow.parquet", "data", "--data with parquet files")
            return datasets.Dataset(pq.read_table(str(path), memory_map=True))
        return datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError, datasets.exceptions.DatasetNotFoundError) as e:
        raise DataError(f"--data: {spec} could not be opened as a Hugging Face dataset: {' '.join(str(e).split())[:300]}") from None


def hf_parts(loaded: Any, spec: str, split: str | None) -> dict[str, Any]:
    """``{"train", "val"}`` from a dataset dict with both, else ``{"all"}`` (``split`` picks one split by name)."""
    if not hasattr(loaded, "keys"):
        return {"all": loaded}
    names = list(loaded.keys())
    if split is not None:
        if split not in names:
            raise DataError(f"--data-split: {spec} has no split {split!r}; it has {names}")
        return {"all": loaded[split]}
    val = next((n for n in VAL_SPLITS if n in names), None)
    if "train" in names and val is not None:
        return {"train": loaded["train"], "val": loaded[val]}
    if len(names) == 1 or "train" in names:
        return {"all": loaded["train" if "train" in names else names[0]]}
    raise DataError(f"--data-split: {spec} has splits {names}; name the one to use")


def _column(features: Any, given: str | None, names: tuple[str, ...], kind: type | None, what: str, spec: str) -> str:
    if given is not None:
        if given not in features:
            raise DataError(f"--{what}-column: {spec} has no column {given!r}; it has {list(features)}")
        return given
    found = next((n for n, f in features.items() if kind is not None and isinstance(f, kind)), None)
    found = found or next((n for n in names if n in features), None)
    if found is None:
        raise DataError(f"--{what}-column: {spec} has no {what} column among {list(features)}; name it with --{what}-column")
    return found


class HFRecords:
    """Random access to the encoded images and labels of one ``datasets.Dataset``."""

    def __init__(self, dataset: Any, spec: str, image_column: str | None = None, label_column: str | None = None) -> None:
        datasets = _datasets()
        self.image_column = _column(dataset.features, image_column, IMAGE_NAMES, datasets.Image, "image", spec)
        self.label_column = _column(dataset.features, label_column, LABEL_NAMES, datasets.ClassLabel, "label", spec)
        feature = dataset.features[self.label_column]
        labels = dataset.with_format("arrow")[self.label_column]
        self.classes, targets = self._targets(feature, labels, datasets, spec)
        keep = np.flatnonzero(targets >= 0)
        self.skipped = len(targets) - len(keep)
        if len(keep) == 0:
            raise DataError(f"--data: {spec} has no labelled rows in column {self.label_column!r}")
        self._rows, self._target = keep, targets[keep]
        if isinstance(dataset.features[self.image_column], datasets.Image):
            dataset = dataset.cast_column(self.image_column, datasets.Image(decode=False))
        self.dataset = dataset.select_columns([self.image_column])
        self.spec = spec

    @staticmethod
    def _targets(feature: Any, labels: Any, datasets: Any, spec: str) -> tuple[list[str], np.ndarray]:
        """Class names and one class index per row (-1 for a row without a label)."""
        values = labels.to_pylist()
        if isinstance(feature, datasets.ClassLabel):
            return list(feature.names), np.asarray([-1 if v is None else v for v in values], dtype=np.int64)
        if all(isinstance(v, str) or v is None for v in values):
            names = sorted({v for v in values if v is not None})
            position = {n: i for i, n in enumerate(names)}
            return names, np.asarray([-1 if v is None else position[v] for v in values], dtype=np.int64)
        if not all(v is None or (isinstance(v, int) and -1 <= v < MAX_CLASSES) for v in values):
            raise DataError(f"--label-column: the labels of {spec} must be class indices in [0, {MAX_CLASSES}) or class names")
        targets = np.asarray([-1 if v is None else v for v in values], dtype=np.int64)
        return [str(i) for i in range(int(targets.max()) + 1)], targets

    def __len__(self) -> int:
        return len(self._rows)

    def source(self, index: int) -> str | bytes:
        """The encoded image of sample ``index``: a file path or the image bytes."""
        value = self.dataset[int(self._rows[index])][self.image_column]
        if isinstance(value, dict):
            return value.get("bytes") or value["path"]
        if isinstance(value, (bytes, str)):
            return value
        raise DataError(f"--image-column: {self.spec} row {int(self._rows[index])} holds {type(value).__name__}, not an encoded image")

    def target(self, index: int) -> int:
        """The class index of sample ``index``."""
        return int(self._target[index])

    def name(self, index: int) -> str:
        """A readable name of sample ``index`` (its file or shard member), for messages."""
        return f"{self.spec}[{int(self._rows[index])}]"
