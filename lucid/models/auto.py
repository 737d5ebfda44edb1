"""Rebuilding a model from its config or folder: the config's ``model_type`` picks the class.

``from_pretrained`` reads what ``save_pretrained`` wrote, from a path or a Hub repository id
(``"user/repo"``, through ``huggingface_hub``). Folders written by
``huggingface_hub.PyTorchModelHubMixin`` for a lucid model class (a config without
``model_type``) and folders of earlier lucid versions (``model_type: "resnet"``) load too.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoints.io import load_file, load_into
from ..core.errors import CheckpointError, LucidError
from .modeling_resnet import ResNet, ResNeXt
from .saving import CONFIG_NAME, FOLDER_KEYS, MODEL_CARD_NAME, WEIGHTS_NAME, config_from_dict, hub_module

__all__ = ["MAX_PARAMETERS", "MODEL_CLASSES", "from_pretrained", "model_from_config"]

# A config read from a file is counted on the meta device first and refused above this size
# (override with ``max_parameters=`` or the LUCID_MAX_PARAMETERS environment variable).
MAX_PARAMETERS = 2_000_000_000
MAX_BLOCKS = 10_000

# model_type (today's and older spellings) -> the class it builds
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    name: cls for cls in (ResNet, ResNeXt) for name in (cls.config_class.model_type, *cls.config_class.legacy_model_types)
}


def _infer_model_type(data: dict[str, Any], classes: dict[str, type]) -> str | None:
    """The model type of a config without one (``PyTorchModelHubMixin`` writes the dataclass fields only):
    the one class whose config takes exactly these fields (fields it fixes, such as a ResNeXt's ``block``, may be there too)."""
    keys = set(data) - set(FOLDER_KEYS)
    fitting = set()
    for cls in classes.values():
        fields = dataclasses.fields(cls.config_class)
        fixed = {f.name for f in fields if not f.init}
        if keys - fixed == {f.name for f in fields if f.init}:
            fitting.add(cls.config_class.model_type)
    return fitting.pop() if len(fitting) == 1 else None


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

    The dict's ``model_type`` picks the class (inferred from the fields when absent, as in
    folders of ``huggingface_hub.PyTorchModelHubMixin``). A config from a file is not trusted: it is
    validated, then its model is built on the ``meta`` device and counted, and one over
    ``max_parameters`` (default :data:`MAX_PARAMETERS`) is refused before any memory is used.
    Every problem raises :class:`~lucid.errors.CheckpointError` naming ``source``.
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: expected a JSON object of config fields, got {type(data).__name__}")
    classes = MODEL_CLASSES
    model_type = data.get("model_type") or _infer_model_type(data, classes)
    if model_type not in classes:
        raise CheckpointError(f"{source}: model_type {model_type!r} is not one of {sorted(classes)}")
    cls = classes[model_type]
    try:
        config = config_from_dict(cls.config_class, {**data, "model_type": model_type})
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


def _local_folder(path: str | os.PathLike[str], hub_args: dict[str, Any]) -> Path:
    """The folder to read: ``path`` itself, or a Hub repository id's snapshot (downloaded once)."""
    local = Path(path)
    if local.exists():
        return local.parent if local.is_file() else local
    text = str(path)
    if text.count("/") != 1 or text.startswith((".", "/")) or os.sep != "/" and os.sep in text:
        raise FileNotFoundError(f"{path}: no such folder, and not a Hub repository id of the form 'user/repo'")
    hub = hub_module()
    try:
        snapshot = hub.snapshot_download(text, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, MODEL_CARD_NAME], **hub_args)
    except (hub.errors.HfHubHTTPError, hub.errors.LocalEntryNotFoundError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileNotFoundError(f"{path}: not a local folder, and the Hub repository could not be read ({first})") from None
    return Path(snapshot)


def from_pretrained(
    path: str | os.PathLike[str],
    map_location: str = "cpu",
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    local_files_only: bool = False,
    endpoint: str | None = None,
    max_parameters: int | None = None,
) -> nn.Module:
    """Rebuild a model saved with ``save_pretrained``: same class, same config, same weights.

    ``path`` is the folder (or its ``config.json`` / ``model.safetensors``), or a Hugging Face
    Hub repository id such as ``"user/repo"`` (fetched with ``huggingface_hub`` into its cache;
    ``revision``, ``cache_dir``, ``local_files_only`` and ``endpoint`` are passed on). The
    config is checked before anything is allocated (see :func:`model_from_config`).
    """
    hub_args = {"revision": revision, "cache_dir": cache_dir, "local_files_only": local_files_only, "endpoint": endpoint}
    directory = _local_folder(path, hub_args)
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
