"""Model folders: ``config.json`` + ``model.safetensors`` + a model card, locally or on the Hugging Face Hub.

``save_pretrained`` writes the folder; :func:`from_pretrained` reads it back, from a path or
a Hub repository id (``"user/repo"``, through ``huggingface_hub``). Folders written by
``huggingface_hub.PyTorchModelHubMixin`` for a lucid model class (a config without
``model_type``) and folders of earlier lucid versions (``model_type: "resnet"``) load too.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import CheckpointError, LucidError
from ..core.fileio import atomic_folder
from ..io import load_file, load_into, save_file
from .foreign import first_foreign_part

__all__ = [
    "CONFIG_NAME",
    "MAX_PARAMETERS",
    "MODEL_CARD_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "config_from_dict",
    "from_pretrained",
    "model_card",
    "model_from_config",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_CARD_NAME = "README.md"
# Keys of config.json that describe the folder rather than the architecture.
FOLDER_KEYS = ("model_type", "library_name", "metadata")
CARD_INPUT = (1, 3, 224, 224)
# A config read from a file is counted on the meta device first and refused above this size
# (override with ``max_parameters=`` or the LUCID_MAX_PARAMETERS environment variable).
MAX_PARAMETERS = 2_000_000_000
MAX_BLOCKS = 10_000


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:  # pragma: no cover - the test environment has it
        raise ImportError("the Hugging Face Hub needs huggingface_hub: pip install 'lucid[hf]'") from None
    return huggingface_hub


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
        foreign = first_foreign_part(self, hooks=False)
        if foreign is not None:
            raise CheckpointError(
                f"save_pretrained: the model holds {foreign}, which a lucid folder (config and plain weights) cannot carry; "
                "save the model before quantizing or wrapping it, or export the result with the tool that made it"
            )
        directory = Path(directory)
        data = self.config.to_dict()  # refuses configs that cannot be JSON (custom block classes)
        meta = dict(getattr(self, "metadata", {}) or {})
        meta.update(metadata or {})
        if meta:
            data["metadata"] = meta
        state_dict, config_text = self.state_dict(), json.dumps(data, indent=2) + "\n"
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
        api = _hub().HfApi(endpoint=endpoint, token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message)


def _count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass, computed on the meta device (nothing runs)."""
    from torch.utils.flop_counter import FlopCounterMode

    state = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    counter = FlopCounterMode(display=False)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            torch.func.functional_call(model, state, (torch.zeros(input_shape, device="meta"),), strict=False)
    finally:
        model.train(training)
    return counter.get_total_flops() // 2


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
    macs = _count_macs(model, shape)
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


def _infer_model_type(data: dict[str, Any], classes: dict[str, type]) -> str | None:
    """The model type of a config without one (``PyTorchModelHubMixin`` writes the dataclass fields only):
    the one class whose config has exactly these fields."""
    keys = set(data) - set(FOLDER_KEYS)
    fitting = {cls.config_class.model_type for cls in classes.values()
               if keys == {f.name for f in dataclasses.fields(cls.config_class)}}
    return fitting.pop() if len(fitting) == 1 else None


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """Build ``config_class`` from a ``config.json`` dict, leaving out the metadata stored beside the config."""
    return config_class.from_dict({k: v for k, v in data.items() if k != "metadata"})


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

    The dict's ``model_type`` picks the class (inferred from the fields when absent, as in
    folders of ``huggingface_hub.PyTorchModelHubMixin``). A config from a file is not trusted: it is
    validated, then its model is built on the ``meta`` device and counted, and one over
    ``max_parameters`` (default :data:`MAX_PARAMETERS`) is refused before any memory is used.
    Every problem raises :class:`~lucid.errors.CheckpointError` naming ``source``.
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: expected a JSON object of config fields, got {type(data).__name__}")
    classes = _model_classes()
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
    hub = _hub()
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
