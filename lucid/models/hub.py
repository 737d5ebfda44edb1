"""``save_pretrained`` / ``from_pretrained``: a model folder is ``config.json`` + ``model.safetensors``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._atomic import atomic_write_text
from ..errors import CheckpointError, LucidError
from ..io import load_file, load_into, save_file

__all__ = ["PretrainedMixin", "from_pretrained", "model_from_config", "CONFIG_NAME", "WEIGHTS_NAME", "MAX_PARAMETERS"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# A config read from a file is counted on the meta device first and refused above this size
# (override with ``max_parameters=`` or the LUCID_MAX_PARAMETERS environment variable).
MAX_PARAMETERS = 2_000_000_000
MAX_BLOCKS = 10_000


class PretrainedMixin:
    """Adds :meth:`save_pretrained` to a model that has a ``config``."""

    config: Any

    def save_pretrained(self, directory: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (each atomically).

        ``metadata`` (JSON-ready, e.g. ``{"class_names": [...]}``) is stored beside the config
        and comes back as ``model.metadata`` from :func:`from_pretrained`.
        """
        assert isinstance(self, nn.Module)
        directory = Path(directory)
        data = self.config.to_dict()  # refuses configs that cannot be JSON (custom block classes)
        meta = dict(getattr(self, "metadata", {}) or {})
        meta.update(metadata or {})
        if meta:
            data["metadata"] = meta
        directory.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), directory / WEIGHTS_NAME)
        atomic_write_text(directory / CONFIG_NAME, json.dumps(data, indent=2) + "\n")
        return directory


def _model_classes() -> dict[str, type]:
    from .resnet import ResNet
    from .resnext import ResNeXt

    classes = {}
    for cls in (ResNet, ResNeXt):
        for name in (cls.config_class.model_type, *cls.config_class.legacy_model_types):
            classes[name] = cls
    return classes


def _parameter_limit(max_parameters: int | None) -> int:
    if max_parameters is not None:
        return max_parameters
    text = os.environ.get("LUCID_MAX_PARAMETERS", "")
    if text:
        try:
            return int(float(text))
        except ValueError:
            raise CheckpointError(f"LUCID_MAX_PARAMETERS={text!r} is not a number of parameters") from None
    return MAX_PARAMETERS


def model_from_config(data: dict[str, Any], source: str = "config", max_parameters: int | None = None) -> nn.Module:
    """Build (freshly initialised) the model a :meth:`~lucid.models.ModelConfig.to_dict` dict describes.

    The dict's ``model_type`` picks the class. A config from a file is not trusted: it is
    validated, then its model is built on the ``meta`` device and counted, and one over
    ``max_parameters`` (default :data:`MAX_PARAMETERS`) is refused before any memory is used.
    Every problem raises :class:`~lucid.errors.CheckpointError` naming ``source``.
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: expected a JSON object of config fields, got {type(data).__name__}")
    classes = _model_classes()
    model_type = data.get("model_type")
    if model_type not in classes:
        raise CheckpointError(f"{source}: model_type {model_type!r} is not one of {sorted(classes)}")
    cls = classes[model_type]
    try:
        config = cls.config_class.from_dict(data)
    except LucidError as e:
        raise CheckpointError(f"{source}: {e}") from None
    _check_size(cls, config, source, _parameter_limit(max_parameters))
    return cls(config)


def _check_size(cls: type, config: Any, source: str, limit: int) -> None:
    blocks = sum(config.layers)
    if blocks > MAX_BLOCKS:
        raise CheckpointError(f"{source}: layers={list(config.layers)} asks for {blocks:,} blocks, over the limit of {MAX_BLOCKS:,}")
    with torch.device("meta"):
        count = sum(p.numel() for p in cls(config).parameters())
    if count > limit:
        raise CheckpointError(
            f"{source}: the config describes a model of {count:,} parameters, over the limit of {limit:,}; "
            "pass max_parameters=N (or set LUCID_MAX_PARAMETERS=N) if you trust this file"
        )


def from_pretrained(
    path: str | os.PathLike[str], map_location: str = "cpu", max_parameters: int | None = None
) -> nn.Module:
    """Rebuild a model saved with ``save_pretrained``: same class, same config, same weights.

    ``path`` is the folder, or its ``config.json`` / ``model.safetensors``. The config is
    checked before anything is allocated (see :func:`model_from_config`).
    """
    path = Path(path)
    directory = path.parent if path.is_file() else path
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: no {CONFIG_NAME} here; expected a folder written by save_pretrained()")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_path}: not valid JSON ({e})") from None
    metadata = data.pop("metadata", {}) if isinstance(data, dict) else {}
    model = model_from_config(data, source=str(config_path), max_parameters=max_parameters)
    load_into(model, load_file(directory / WEIGHTS_NAME, map_location=map_location))
    model.metadata = metadata
    return model
