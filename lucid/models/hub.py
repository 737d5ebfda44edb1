"""``save_pretrained`` / ``from_pretrained``: a model folder is ``config.json`` + ``model.safetensors``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from .._atomic import atomic_folder

__all__ = ["PretrainedMixin", "from_pretrained", "model_from_config", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class PretrainedMixin:
    """Adds :meth:`save_pretrained` to a model that has a ``config``."""

    config: Any

    def save_pretrained(self, directory: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``, as one unit.

        The two files are written to a new folder that then replaces ``directory`` in one rename,
        so a reader (or a process killed mid-save) sees the old model or the new one, never a mix;
        other files already in ``directory`` are kept.

        ``metadata`` (JSON-ready, e.g. ``{"class_names": [...]}``) is stored beside the config
        and comes back as ``model.metadata`` from :func:`from_pretrained`.
        """
        from ..weights.io import save_file

        assert isinstance(self, nn.Module)
        directory = Path(directory)
        data = self.config.to_dict()  # refuses configs that cannot be JSON (custom block classes)
        meta = dict(getattr(self, "metadata", {}) or {})
        meta.update(metadata or {})
        if meta:
            data["metadata"] = meta
        state_dict, config_text = self.state_dict(), json.dumps(data, indent=2) + "\n"

        def write(folder: Path) -> None:
            save_file(state_dict, folder / WEIGHTS_NAME)
            (folder / CONFIG_NAME).write_text(config_text, encoding="utf-8")

        return atomic_folder(directory, write, replace={CONFIG_NAME, WEIGHTS_NAME})


def _model_classes() -> dict[str, type]:
    from .resnet import ResNet
    from .resnext import ResNeXt

    return {cls.config_class.model_type: cls for cls in (ResNet, ResNeXt)}


def model_from_config(data: dict[str, Any]) -> nn.Module:
    """Build (freshly initialised) the model a :meth:`~lucid.models.ModelConfig.to_dict` dict describes.

    The dict's ``model_type`` picks the class; an unknown one raises ``CheckpointError``.
    """
    from ..weights.io import CheckpointError

    classes = _model_classes()
    model_type = data.get("model_type")
    if model_type not in classes:
        raise CheckpointError(f"model_type {model_type!r} is not one of {sorted(classes)}")
    cls = classes[model_type]
    return cls(cls.config_class.from_dict(data))


def from_pretrained(path: str | os.PathLike[str], map_location: str = "cpu") -> nn.Module:
    """Rebuild a model saved with ``save_pretrained``: same class, same config, same weights.

    ``path`` is the folder, or its ``config.json`` / ``model.safetensors``.
    """
    from ..weights.io import CheckpointError, load_file, load_into

    path = Path(path)
    directory = path.parent if path.is_file() else path
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: no {CONFIG_NAME} here; expected a folder written by save_pretrained()")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{config_path}: not valid JSON ({e})") from None
    metadata = data.pop("metadata", {})
    try:
        model = model_from_config(data)
    except CheckpointError as e:
        raise CheckpointError(f"{config_path}: {e}") from None
    load_into(model, load_file(directory / WEIGHTS_NAME, map_location=map_location))
    model.metadata = metadata
    return model
