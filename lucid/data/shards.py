"""WebDataset tar shards with random access: an index of member offsets, read with ``pread``.

A shard is a plain (uncompressed) tar file whose members are grouped into samples by key (the
file name up to its first dot): ``0001.jpg`` + ``0001.cls``. A sample needs one image
(``jpg``, ``jpeg``, ``png`` or ``webp``) and a label: ``cls`` (the class index as text) or
``json`` (``{"label": index or class name}``). Samples without an image or a label are skipped
and counted; a file that is not a readable tar, or a label outside the classes, is refused in one
line. Class names come from ``classes.txt`` (one per line) or ``manifest.json`` (``"classes"``)
beside the shards or one folder up.

The index makes the shards a map-style dataset, so ``DistributedSampler`` gives every sample
to exactly one process per epoch and the same seed gives the same order, as for image folders.
"""
from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..core.checks import is_int
from ..core.errors import DataError
from ..core.extras import require

__all__ = ["IMAGE_KEYS", "MAX_CLASSES", "ShardRecords", "expand_shards", "read_classes"]

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
MAX_CLASSES = 1_000_000  # class names in classes.txt / manifest.json, and the largest class index
MAX_LABEL_BYTES = 65_536  # a cls or json member larger than this is not a label
MAX_LIST_BYTES = 64 * 2**20  # classes.txt, manifest.json and shard list files


def _read_small(path: Path) -> str:
    if path.stat().st_size > MAX_LIST_BYTES:
        raise DataError(f"--data: {path} is {path.stat().st_size} bytes; expected a list of at most {MAX_LIST_BYTES}")
    return path.read_text(encoding="utf-8")


def expand_shards(spec: str) -> list[Path]:
    """Shard files of ``spec``: a folder of ``.tar`` files, a brace pattern (``train-{000000..000099}.tar``) or a list file."""
    path = Path(spec)
    if path.is_dir():
        shards = sorted(path.glob("*.tar"))
    elif "{" in spec:
        braceexpand = require("braceexpand", "data", "--data with a shard pattern")  # installed with webdataset
        shards = [Path(s) for s in braceexpand.braceexpand(spec)]
    elif path.is_file() and path.suffix != ".tar":
        lines = [line.strip() for line in _read_small(path).splitlines()]
        shards = [path.parent / line for line in lines if line and not line.startswith("#")]
    else:
        shards = [path]
    missing = [str(s) for s in shards if not s.is_file()]
    if not shards or missing:
        raise DataError(f"--data: {spec}: {'no .tar shards found' if not shards else f'{len(missing)} shard(s) missing, e.g. {missing[0]}'}")
    return shards


def read_classes(folder: Path) -> list[str] | None:
    """Class names from ``classes.txt`` or ``manifest.json`` in ``folder`` or its parent; None when neither is there."""
    for where in (folder, folder.parent):
        if (where / "classes.txt").is_file():
            names = [line.strip() for line in _read_small(where / "classes.txt").splitlines() if line.strip()]
        elif (where / "manifest.json").is_file():
            try:
                names = json.loads(_read_small(where / "manifest.json")).get("classes")
            except (ValueError, AttributeError) as e:
                raise DataError(f"--data: {where / 'manifest.json'} is not a JSON object with a classes list ({e})") from None
        else:
            continue
        if not isinstance(names, list) or not 0 < len(names) <= MAX_CLASSES or not all(isinstance(n, str) for n in names):
            raise DataError(f"--data: the class names in {where} must be 1 to {MAX_CLASSES} strings")
        return names
    return None


def _members(shard: Path) -> Iterator[tuple[str, str, tarfile.TarInfo, tarfile.TarFile]]:
    """``(key, extension, member, tar)`` for every file of a shard; an unreadable tar is a ``DataError``."""
    try:
        with tarfile.open(shard, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, name = os.path.split(member.name)
                stem, dot, ext = name.partition(".")
                if dot and not name.startswith("."):
                    yield os.path.join(folder, stem), ext.lower(), member, tar
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"--data: {shard} is not a readable (uncompressed) tar shard: {e}") from None


def _label(raw: bytes, ext: str, classes: dict[str, int] | None, where: str) -> int | None:
    """The class index stored in a ``cls`` or ``json`` member, None when it has none."""
    try:
        value = int(raw.decode().strip()) if ext == "cls" else json.loads(raw).get("label")
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise DataError(f"--data: {where}.{ext} is not a label (expected {'an integer' if ext == 'cls' else 'a JSON object with label'})") from None
    if isinstance(value, str):
        if classes is None or value not in classes:
            raise DataError(f"--data: {where}.{ext} names class {value[:80]!r}, which is not in the shards' class list")
        return classes[value]
    if value is None:
        return None
    limit = len(classes) if classes is not None else MAX_CLASSES
    if not is_int(value) or not 0 <= value < limit:
        raise DataError(f"--data: {where}.{ext} has label {value!r}; expected a class index in [0, {limit})")
    return value


class ShardRecords:
    """Random access to the samples of WebDataset shards, through an index of member offsets built on open."""

    def __init__(self, shards: list[Path], classes: list[str] | None = None) -> None:
        self.shards = [str(s) for s in shards]
        self.skipped = 0
        columns: list[list[int]] = [[], [], [], []]  # shard, offset, size, target
        self.keys: list[str] = []
        positions = None if classes is None else {name: i for i, name in enumerate(classes)}
        for number, shard in enumerate(shards):
            self._index(number, shard, positions, columns)
        if not self.keys:
            raise DataError(f"--data: no labelled image samples in {len(shards)} shard(s), e.g. {shards[0]}")
        self._shard, self._offset, self._size, self._target = (np.asarray(c, dtype=np.int64) for c in columns)
        self.classes = classes or [str(i) for i in range(int(self._target.max()) + 1)]

    def _index(self, number: int, shard: Path, classes: dict[str, int] | None, columns: list[list[int]]) -> None:
        samples: dict[str, dict[str, tarfile.TarInfo]] = {}
        labels: dict[str, int | None] = {}
        for key, ext, member, tar in _members(shard):
            samples.setdefault(key, {})[ext] = member
            if ext in ("cls", "json") and key not in labels:
                if member.size > MAX_LABEL_BYTES:
                    raise DataError(f"--data: {shard}:{member.name} is {member.size} bytes; a label is at most {MAX_LABEL_BYTES}")
                labels[key] = _label(tar.extractfile(member).read(), ext, classes, f"{shard}:{key}")
        for key, members in samples.items():
            image = next((members[k] for k in IMAGE_KEYS if k in members), None)
            label = labels.get(key)
            if image is None or label is None:
                self.skipped += 1
                continue
            for column, value in zip(columns, (number, image.offset_data, image.size, label), strict=True):
                column.append(value)
            self.keys.append(f"{shard}:{key}")

    def __len__(self) -> int:
        return len(self.keys)

    def source(self, index: int) -> bytes:
        """The encoded image of sample ``index``: a file path or the image bytes."""
        with open(self.shards[self._shard[index]], "rb") as f:
            return os.pread(f.fileno(), int(self._size[index]), int(self._offset[index]))

    def target(self, index: int) -> int:
        """The class index of sample ``index``."""
        return int(self._target[index])

    def name(self, index: int) -> str:
        """A readable name of sample ``index`` (its file or shard member), for messages."""
        return self.keys[index]
