"""``--data``: one entry that recognises the format of a data location and opens it.

- an image folder (``root/<class>/<images>``, or ``root/train`` + ``root/val``);
- WebDataset shards: a folder of ``.tar`` files (or ``train/`` + ``val/`` folders of them), a
  brace pattern (``train-{000000..000099}.tar``) or a list file (one shard path per line);
- Hugging Face datasets: a ``save_to_disk`` folder, ``.parquet``/``.arrow`` files, or
  ``hf:user/name`` from the local Hugging Face cache (``split``, ``image_column`` and
  ``label_column`` pick what to read).
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import DataError
from .folder import folder_records
from .hf import HFRecords, hf_parts, load_hf
from .preprocessing import Preprocessing
from .records import warn
from .shards import ShardRecords, expand_shards, read_classes
from .splits import Source, Splits, make_splits

__all__ = ["FORMATS", "detect_format", "open_source", "open_splits"]

FORMATS = ("folder", "shards", "hf")
HF_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")
LIST_SUFFIXES = (".txt", ".list", ".shards")


def _has_shards(folder: Path) -> bool:
    return any(folder.glob("*.tar")) or ((folder / "train").is_dir() and any((folder / "train").glob("*.tar")))


def detect_format(spec: str) -> str:
    """``folder``, ``shards`` or ``hf`` for a ``--data`` value (see the module docstring)."""
    path = Path(spec)
    if spec.startswith("hf:") or path.suffix in (".parquet", ".arrow"):
        return "hf"
    if "{" in spec or path.suffix == ".tar" or (path.is_file() and path.suffix in LIST_SUFFIXES):
        return "shards"
    if not path.exists():
        raise DataError(f"--data: {spec!r} does not exist")
    if not path.is_dir():
        raise DataError(f"--data: {spec!r} is neither a folder, a .tar shard, a shard list ({', '.join(LIST_SUFFIXES)}) nor a .parquet/.arrow file")
    if any((path / m).is_file() for m in HF_MARKERS) or any(path.glob("*.parquet")):
        return "hf"
    return "shards" if _has_shards(path) else "folder"


def open_source(spec: str | Path, *, split: str | None = None, image_column: str | None = None, label_column: str | None = None) -> Source:
    """Open ``--data`` in whichever format it is; skipped samples (no image or no label) are counted and warned about once."""
    spec = str(spec)
    kind = detect_format(spec)
    if kind == "folder":
        source = Source("folder", str(Path(spec).resolve()), folder_records(spec))
    elif kind == "shards":
        source = _open_shards(spec)
    else:
        source = _open_hf(spec, split, image_column, label_column)
    skipped = sum(source.skipped.values())
    if skipped:
        warn(f"{spec}: {skipped} sample(s) without an image or a label were skipped ({source.skipped})")
    return source


def open_splits(spec: str | Path, val_split: float | None, seed: int, prep: Preprocessing, auto_augment: str | None = None,
                random_erase: float = 0.0, **source_options: str | None) -> Splits:
    """Training and validation datasets of ``--data`` in any format (see :func:`open_source` and :func:`make_splits`)."""
    return make_splits(open_source(spec, **source_options), val_split, seed, prep, auto_augment, random_erase)


def _open_shards(spec: str) -> Source:
    path = Path(spec)
    if path.is_dir() and not any(path.glob("*.tar")):
        if not (path / "val").is_dir():
            raise DataError(f"--data: {spec} has train/ shards but no val/ shards")
        names = {part: path / part for part in ("train", "val")}
    else:
        names = {"all": path}
    parts = {}
    for part, where in names.items():
        shards = expand_shards(str(where))
        parts[part] = ShardRecords(shards, read_classes(shards[0].parent))
    location = str(path.resolve()) if path.exists() else spec
    return Source("shards", location, parts, {p: r.skipped for p, r in parts.items() if r.skipped})


def _open_hf(spec: str, split: str | None, image_column: str | None, label_column: str | None) -> Source:
    loaded = load_hf(spec, split)
    parts = {part: HFRecords(ds, spec, image_column, label_column) for part, ds in hf_parts(loaded, spec, split).items()}
    location = spec if spec.startswith("hf:") else str(Path(spec).resolve())
    return Source("hf", location, parts, {p: r.skipped for p, r in parts.items() if r.skipped})
