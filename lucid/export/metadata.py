"""What an exported artefact carries besides its graph: the model's config and its metadata (class names,
preprocessing, the data it was trained on), and the one reader that gets them back from any format.

ONNX files keep them in ``metadata_props`` (``lucid.config``, ``lucid.metadata``), OpenVINO models in
``rt_info`` under ``lucid``; ExecuTorch ``.pte`` and ``torch.export`` ``.pt2`` files get a sidecar
``<file>.json``. Each value is a JSON string, readable without lucid.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from ..core.errors import CheckpointError
from ..core.extras import require
from ..core.fileio import atomic_write_text

__all__ = ["ARTEFACT_SUFFIXES", "artefact_format", "artefact_size", "model_metadata", "read_metadata", "sidecar_path", "write_sidecar"]

# file suffix -> format name
ARTEFACT_SUFFIXES = {".onnx": "onnx", ".xml": "openvino", ".pte": "executorch", ".pt2": "torch-export"}
MAX_METADATA_BYTES = 64 * 2**20  # a sidecar is a few kB; anything this large is not one


def artefact_format(path: str | os.PathLike[str]) -> str:
    """The format of an artefact file, from its suffix (``.onnx``, ``.xml``, ``.pte``, ``.pt2``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in ARTEFACT_SUFFIXES:
        raise CheckpointError(f"{path}: not an exported model; expected a file ending in {', '.join(ARTEFACT_SUFFIXES)}")
    return ARTEFACT_SUFFIXES[suffix]


def artefact_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the artefact with the files that belong to it (OpenVINO's ``.bin``, ONNX's external ``.data``)."""
    path = Path(path)
    companions = [path.with_name(path.name + ".data")]
    if artefact_format(path) == "openvino":
        companions.append(path.with_suffix(".bin"))
    return path.stat().st_size + sum(p.stat().st_size for p in companions if p.is_file())


def model_metadata(model: nn.Module) -> dict[str, str]:
    """The model's config and ``model.metadata`` as JSON strings, keyed as every artefact stores them."""
    props: dict[str, str] = {}
    with contextlib.suppress(TypeError):  # configs with a custom block class have no JSON form
        props["lucid.config"] = json.dumps(model.config.to_dict())
    if getattr(model, "metadata", None):
        props["lucid.metadata"] = json.dumps(model.metadata)
    return props


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``model.pte`` -> ``model.pte.json``: where formats without a metadata field keep it."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(path: str | os.PathLike[str], props: dict[str, str]) -> Path:
    """Write ``props`` (from :func:`model_metadata`) atomically beside the artefact ``path``."""
    return atomic_write_text(sidecar_path(path), json.dumps(props, indent=2) + "\n")


def _parse(props: dict[str, str], source: str) -> dict[str, Any]:
    result: dict[str, Any] = {"config": None, "metadata": {}}
    for key, field in (("lucid.config", "config"), ("lucid.metadata", "metadata")):
        if key not in props:
            continue
        try:
            value = json.loads(props[key])
        except (ValueError, RecursionError):
            raise CheckpointError(f"{source}: {key} is not valid JSON") from None
        if not isinstance(value, dict):
            raise CheckpointError(f"{source}: {key} must be a JSON object, got {type(value).__name__}")
        result[field] = value
    return result


def _onnx_props(path: Path) -> dict[str, str]:
    onnx = require("onnx", "export", "reading an ONNX file's metadata")
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def _openvino_props(path: Path) -> dict[str, str]:
    ov = require("openvino", "openvino", "reading an OpenVINO model's metadata")
    model = ov.Core().read_model(str(path))
    return {f"lucid.{key}": model.get_rt_info(["lucid", key]).astype(str)
            for key in ("config", "metadata") if model.has_rt_info(["lucid", key])}


def _sidecar_props(path: Path) -> dict[str, str]:
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    if side.stat().st_size > MAX_METADATA_BYTES:
        raise CheckpointError(f"{side}: {side.stat().st_size} bytes, more than a metadata file can hold ({MAX_METADATA_BYTES})")
    try:
        props = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        raise CheckpointError(f"{side}: not valid JSON") from None
    if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
        raise CheckpointError(f"{side}: expected a JSON object of strings (lucid.config, lucid.metadata)")
    return props


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config and metadata an exported artefact carries: ``{"format", "config", "metadata"}``.

    ``metadata`` holds ``class_names`` and ``preprocessing`` (image size, mean, std, crop) when the
    model came from a training run; it is ``{}`` when the artefact carries none. Nothing is executed.
    """
    path = Path(path)
    fmt = artefact_format(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such exported model", str(path))
    reader = {"onnx": _onnx_props, "openvino": _openvino_props}.get(fmt, _sidecar_props)
    return {"format": fmt, **_parse(reader(path), str(path))}
