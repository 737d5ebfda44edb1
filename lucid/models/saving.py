"""Model folders: ``config.json`` + ``model.safetensors`` + a model card, written locally or to the Hugging Face Hub.

:class:`PretrainedMixin` gives every lucid model ``save_pretrained`` and ``push_to_hub``;
:mod:`lucid.models.auto` reads the folders back.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from ..checkpoints.io import save_file
from ..core.errors import CheckpointError, OptionError
from ..core.extras import require
from ..core.fileio import atomic_folder
from ..nn.measure import count_macs
from .foreign import first_foreign_part

__all__ = [
    "CONFIG_NAME",
    "MODEL_CARD_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "config_from_dict",
    "count_macs",
    "hub_module",
    "model_card",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_CARD_NAME = "README.md"
# Keys of config.json that describe the folder rather than the architecture.
FOLDER_KEYS = ("model_type", "library_name", "metadata")
CARD_INPUT = (1, 3, 224, 224)


def hub_module() -> Any:
    """huggingface_hub, or a one-line error naming the extra that installs it."""
    return require("huggingface_hub", "hf", "the Hugging Face Hub")  # extra: hf



def _config_text(data: dict[str, Any]) -> str:
    """``config.json`` text; NaN and infinities (which JSON cannot hold) in the metadata are refused by name."""
    try:
        return json.dumps(data, indent=2, allow_nan=False) + "\n"
    except ValueError:
        raise OptionError("metadata holds NaN or an infinity, which config.json (JSON) cannot store; give finite numbers or None",
                          "metadata") from None

class PretrainedMixin:
    """Adds :meth:`save_pretrained` and :meth:`push_to_hub` to a model that has a ``config``."""

    config: Any

    def save_pretrained(self, directory: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and a model card ``README.md`` into ``directory``, as one unit.

        The files are written to a new folder that then replaces ``directory`` in one rename,
        so a reader (or a process killed mid-save) sees the old model or the new one, never a mix;
        other files already in ``directory`` are kept.

        ``metadata`` (JSON-ready, e.g. ``{"class_names": [...]}``) is stored beside the config
        and comes back as ``model.metadata`` from :func:`from_pretrained`. The weights file
        carries the config in its safetensors metadata (``lucid.config``), so it describes
        itself when copied on its own. A ``README.md`` already in the folder is kept.
        """
        assert isinstance(self, nn.Module)
        data = self.config.to_dict()  # refuses configs that cannot be JSON (custom block classes)
        foreign = first_foreign_part(self, hooks=False)
        if foreign is not None:
            raise CheckpointError(
                f"save_pretrained: the model holds {foreign}, which a lucid folder (config and plain weights) cannot carry; "
                "save the model before quantizing or wrapping it, or export the result with the tool that made it"
            )
        directory = Path(directory)
        meta = dict(getattr(self, "metadata", {}) or {})
        meta.update(metadata or {})
        if meta:
            data["metadata"] = meta
        state_dict, config_text = self.state_dict(), _config_text(data)
        card = None if (directory / MODEL_CARD_NAME).exists() else model_card(self, meta)

        def write(folder: Path) -> None:
            save_file(state_dict, folder / WEIGHTS_NAME, metadata={"format": "pt", "lucid.config": config_text})
            (folder / CONFIG_NAME).write_text(config_text, encoding="utf-8")
            if card is not None:
                (folder / MODEL_CARD_NAME).write_text(card, encoding="utf-8")

        written = {CONFIG_NAME, WEIGHTS_NAME} | ({MODEL_CARD_NAME} if card is not None else set())
        return atomic_folder(directory, write, replace=written)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool | None = None,
        revision: str | None = None,
        commit_message: str = "Upload lucid model",
        endpoint: str | None = None,
    ) -> Any:
        """Upload this model's :meth:`save_pretrained` folder to the Hub repository ``repo_id``.

        The repository is created when missing. Returns huggingface_hub's ``CommitInfo``.
        ``endpoint`` points at another Hub server (default: ``HF_ENDPOINT`` or huggingface.co).
        """
        api = hub_module().HfApi(endpoint=endpoint, token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message)


def _weights_lines(weights: dict[str, Any]) -> list[str]:
    lines = ["## Weights", ""]
    source = weights.get("hf_hub_id") or weights.get("url")
    lines.append(f"- {weights.get('preset', '?')} `{weights.get('tag', '?')}`" + (f", from <{source}>" if source else ""))
    if weights.get("top1") is not None:
        top5 = f", top-5 {weights['top5']}%" if weights.get("top5") is not None else ""
        lines.append(f"- {weights.get('dataset', 'ImageNet-1K')}: top-1 {weights['top1']}%{top5} (as published)")
    lines.append(
        f"- Evaluation preprocessing: resize {weights.get('resize')} ({weights.get('interpolation')}), centre crop "
        f"{weights.get('crop')}, mean {list(weights.get('mean', []))}, std {list(weights.get('std', []))}"
    )
    if weights.get("recipe"):
        lines.append(f"- Training recipe: <{weights['recipe']}>")
    return lines + [""]


def _preprocessing_lines(prep: dict[str, Any]) -> list[str]:
    return [
        "## Preprocessing (from the training run)", "",
        f"- Image size {prep.get('image_size')}, {prep.get('channels')} channel(s), crop fraction {prep.get('crop')}",
        f"- Mean {prep.get('mean')}, std {prep.get('std')}", "",
    ]


def model_card(model: nn.Module, metadata: dict[str, Any] | None = None) -> str:
    """A Hugging Face model card (``README.md``) for ``model``: architecture, parameters, MACs,
    and, when known, the weights' source, published accuracy and preprocessing."""
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    shape = (1, config.in_channels, *CARD_INPUT[2:])
    macs = count_macs(model, shape)
    fields = ", ".join(f"{f.name}={getattr(config, f.name)!r}" for f in dataclasses.fields(config))
    lines = [
        "---", "library_name: lucid", "pipeline_tag: image-classification",
        "tags:", "- lucid", "- image-classification", f"- {type(model).__name__.lower()}", "---", "",
        f"# {type(model).__name__}", "",
        (f"A lucid `{type(model).__name__}` ({type(config).__name__}). Load it with "
         "`lucid.models.from_pretrained(...)`, given this folder or its Hub repository id."), "",
        "## Architecture", "",
        f"- Config: `{fields}`",
        f"- Parameters: {params:,}",
        f"- MACs at {shape[2]}x{shape[3]}: {macs / 1e9:.2f} G",
        f"- Classes: {config.num_classes}", "",
    ]
    metadata = metadata or {}
    if "weights" in metadata:
        lines += _weights_lines(metadata["weights"])
    elif "preprocessing" in metadata:
        lines += _preprocessing_lines(metadata["preprocessing"])
    return "\n".join(lines)


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """Build ``config_class`` from a ``config.json`` dict, leaving out the metadata stored beside the config."""
    return config_class.from_dict({k: v for k, v in data.items() if k != "metadata"})
