"""``lucid data pack``: write any data source as WebDataset shards (or a ``save_to_disk`` dataset); ``lucid data info``.

Packing reads every image once: a file that cannot be decoded is skipped and counted; an image
whose long side exceeds ``max_side`` is re-encoded as a JPEG (quality 90) at that size, as FFCV
stores ImageNet; JPEG, PNG and WebP files are otherwise copied byte for byte and other formats
stored as PNG. The output folder holds ``train/`` and ``val/`` when the source has both parts,
``classes.txt`` and ``manifest.json`` (counts, and the size and sha256 of every file), and it
appears complete or not at all (:func:`lucid.core.fileio.atomic_folder`).
"""
from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from ..core.errors import DataError, OptionError
from ..core.extras import require
from ..core.fileio import atomic_folder
from .decode import DECODE_ERRORS, open_image
from .records import Records
from .sources import open_source
from .splits import Source

__all__ = ["MANIFEST", "PACK_FORMATS", "data_info", "pack"]

MANIFEST = "manifest.json"
PACK_FORMATS = ("shards", "hf")
KEPT_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MAX_SHARD_SIZE = 1_000_000
MAX_SIDE_LIMIT = 65_536
JPEG_QUALITY = 90


def _encoded(source: str | bytes, max_side: int | None) -> tuple[str, bytes]:
    """``(extension, bytes)`` to store for one image; raises ``OSError``/``ValueError`` for an unreadable one."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    with open_image(data) as image:
        fmt = image.format
        if max_side is not None and max(image.size) > max_side:
            image.draft("RGB", (max_side, max_side))
            image = image.convert("L" if image.mode == "L" else "RGB")
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return "jpg", _save(image, "JPEG", quality=JPEG_QUALITY)
        image.load()  # a truncated or corrupt file fails here, not in training
        if fmt in KEPT_FORMATS:
            return KEPT_FORMATS[fmt], data
        return "png", _save(image.convert("RGBA" if "A" in image.getbands() else "RGB"), "PNG")


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _samples(records: Records, max_side: int | None, skipped: list[str]) -> Iterator[tuple[str, bytes, int]]:
    for index in range(len(records)):
        try:
            ext, data = _encoded(records.source(index), max_side)
        except DECODE_ERRORS:
            skipped.append(records.name(index))
            continue
        yield ext, data, records.target(index)


def _file_entry(path: Path, root: Path, samples: int) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return {"name": str(path.relative_to(root)), "samples": samples, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _write_shards(records: Records, folder: Path, root: Path, prefix: str, shard_size: int, max_side: int | None) -> dict[str, Any]:
    """Write one part as ``prefix-000000.tar`` ... in ``folder``; returns its manifest entry."""
    wds = require("webdataset", "data", "lucid data pack")  # lucid[data]
    folder.mkdir(parents=True, exist_ok=True)
    files, skipped, count, writer, in_shard = [], [], 0, None, 0
    for ext, data, target in _samples(records, max_side, skipped):
        if writer is None:
            path = folder / f"{prefix}-{len(files):06d}.tar"
            writer, in_shard = wds.TarWriter(str(path)), 0
        writer.write({"__key__": f"{count:09d}", ext: data, "cls": str(target).encode()})
        count, in_shard = count + 1, in_shard + 1
        if in_shard == shard_size:
            writer.close()
            files.append(_file_entry(path, root, in_shard))
            writer = None
    if writer is not None:
        writer.close()
        files.append(_file_entry(path, root, in_shard))
    return {"samples": count, "skipped": len(skipped), "files": files}


def _write_hf(source: Source, folder: Path, max_side: int | None) -> dict[str, dict[str, Any]]:
    """Write every part as one split of a ``save_to_disk`` dataset dict (``val`` becomes ``validation``)."""
    datasets = require("datasets", "data", "lucid data pack --format hf")  # lucid[data]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=source.classes)})
    splits, parts = {}, {}
    with tempfile.TemporaryDirectory(prefix="lucid-pack-") as cache:
        for part, records in source.parts.items():
            skipped: list[str] = []

            def rows(records: Records = records, skipped: list[str] = skipped) -> Iterator[dict[str, Any]]:
                for _, data, target in _samples(records, max_side, skipped):
                    yield {"image": {"bytes": data, "path": None}, "label": target}

            name = {"val": "validation", "all": "train"}.get(part, part)
            splits[name] = datasets.Dataset.from_generator(rows, features=features, cache_dir=cache)
            parts[part] = {"samples": len(splits[name]), "skipped": len(skipped), "split": name}
        datasets.DatasetDict(splits).save_to_disk(str(folder))
    for part in parts.values():
        part["files"] = [_file_entry(p, folder, 0) for p in sorted((folder / part["split"]).glob("*.arrow"))]
    return parts


def _check_out(out: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier pack output."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DataError(f"OUT: {out} exists and is not a folder; give a new folder name")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise DataError(f"OUT: {out} is a folder that holds other files; give a new or empty folder (or an earlier pack output to replace)")


def pack(src: str, out: str | Path, *, shard_size: int = 1000, max_side: int | None = None, fmt: str = "shards",
         **source_options: Any) -> dict[str, Any]:
    """Write the source ``src`` (any ``--data`` format) to ``out``; returns the manifest that is written with it."""
    if fmt not in PACK_FORMATS:
        raise OptionError(f"--format must be one of {', '.join(PACK_FORMATS)}, got {fmt!r}", "format")
    if not 1 <= shard_size <= MAX_SHARD_SIZE:
        raise OptionError(f"--shard-size must be between 1 and {MAX_SHARD_SIZE} samples, got {shard_size}", "shard_size")
    if max_side is not None and not 8 <= max_side <= MAX_SIDE_LIMIT:
        raise OptionError(f"--max-side must be between 8 and {MAX_SIDE_LIMIT} px, got {max_side}", "max_side")
    out = Path(out)
    _check_out(out)
    source = open_source(src, **source_options)
    manifest: dict[str, Any] = {"format": "webdataset" if fmt == "shards" else "hf", "source": source.location,
                                "max_side": max_side, "classes": source.classes, "parts": {}}

    def write(tmp: Path) -> None:
        if fmt == "hf":
            manifest["parts"] = _write_hf(source, tmp, max_side)
        for part, records in source.parts.items() if fmt == "shards" else ():
            folder = tmp if part == "all" else tmp / part
            manifest["parts"][part] = _write_shards(records, folder, tmp, part if part != "all" else "shard", shard_size, max_side)
        (tmp / "classes.txt").write_text("".join(f"{name}\n" for name in source.classes), encoding="utf-8")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    atomic_folder(out, write)
    return manifest


def data_info(spec: str, verify: bool = False, **source_options: Any) -> dict[str, Any]:
    """Format, location, classes, samples per part and skips of a data source; with ``verify``, the
    files whose size or sha256 differ from the manifest written by :func:`pack`."""
    source = open_source(spec, **source_options)
    info = {"format": source.kind, **source.describe(), "classes": source.classes}
    if verify:
        info["mismatched"] = _verify(Path(spec))
    return info


def _verify(root: Path) -> list[str]:
    if not (root / MANIFEST).is_file():
        raise DataError(f"--verify: {root} has no {MANIFEST} (only lucid data pack output can be verified)")
    try:
        parts = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["parts"]
        entries = [entry for part in parts.values() for entry in part["files"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"--verify: {root / MANIFEST} is not a lucid data pack manifest ({e})") from None
    bad = []
    for entry in entries:
        path = root / str(entry.get("name", ""))
        if not path.resolve().is_relative_to(root.resolve()) or not path.is_file():
            bad.append(f"{entry.get('name')}: missing")
        elif _file_entry(path, root, 0)["sha256"] != entry.get("sha256"):
            bad.append(f"{entry['name']}: sha256 differs")
    return bad
