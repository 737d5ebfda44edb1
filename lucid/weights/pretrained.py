"""Published ImageNet weights for the presets: a registry per tag, download, verify, convert, load.

The weights are torchvision's own files (``download.pytorch.org``); they are kept in a cache
folder shared with torchvision when ``LUCID_HOME`` is not set, checked against the SHA-256
prefix in their file name, renamed to the lucid layout and loaded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlparse

import torch
from torch import nn

from ..constants import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported for older imports)
from ..errors import CheckpointError
from ..io import load_file, load_into
from ..models.presets import PRESETS, PretrainedWeights
from ..models.registry import get_preset, set_weights_loader
from .conversion import convert

__all__ = [
    "PretrainedWeights",
    "cache_dir",
    "download",
    "info",
    "list_pretrained",
    "load_checkpoint",
    "load_pretrained",
    "register_pretrained",
]

_REGISTRY: dict[str, dict[str, PretrainedWeights]] = {}
_DEFAULT_TAG: dict[str, str] = {}


def register_pretrained(weights: PretrainedWeights, default: bool = False) -> PretrainedWeights:
    """Add (or replace) ``weights`` under ``(weights.preset, weights.tag)``.

    ``default=True`` (or being the preset's first tag) makes it what ``pretrained=True`` loads.
    Use it for a mirror or your own published weights; ``file://`` URLs work.
    """
    if not isinstance(weights, PretrainedWeights):
        raise TypeError(f"weights must be a PretrainedWeights, got {type(weights).__name__}")
    if not (len(weights.sha256) >= 8 and all(c in "0123456789abcdef" for c in weights.sha256)):
        raise ValueError(f"sha256 must be at least 8 lowercase hex digits of the file's SHA-256, got {weights.sha256!r}")
    _REGISTRY.setdefault(weights.preset, {})[weights.tag] = weights
    if default or weights.preset not in _DEFAULT_TAG:
        _DEFAULT_TAG[weights.preset] = weights.tag
    return weights


# The presets table lists each preset's weights oldest first; the newest recipe is the default.
for _preset in PRESETS.values():
    for _weights in _preset.weights:
        register_pretrained(_weights, default=True)


def _check_preset(name: str) -> None:
    get_preset(name)  # unknown names raise with suggestions


def list_pretrained(name: str | None = None) -> list[str]:
    """Tags published for preset ``name`` (default first), or, without a name, the presets that have weights."""
    if name is None:
        return sorted(_REGISTRY)
    _check_preset(name)
    tags = _REGISTRY.get(name, {})
    return sorted(tags, key=lambda t: (t != _DEFAULT_TAG.get(name), t))


def info(name: str, tag: str | None = None) -> PretrainedWeights:
    """The registry entry for preset ``name`` and ``tag`` (``None`` or ``"DEFAULT"``: the default tag)."""
    _check_preset(name)
    tags = _REGISTRY.get(name)
    if not tags:
        raise ValueError(f"no published weights for {name!r}; presets with weights: {', '.join(list_pretrained())}")
    if tag is not None and not isinstance(tag, str):
        raise TypeError(f"weights must be a tag name such as 'IMAGENET1K_V1' (or use pretrained=True), got {tag!r}")
    if tag is None or tag.upper() == "DEFAULT":
        return tags[_DEFAULT_TAG[name]]
    by_upper = {t.upper(): w for t, w in tags.items()}
    if tag.upper() not in by_upper:
        raise ValueError(f"weights={tag!r} is not a tag of {name!r}; its tags: {', '.join(list_pretrained(name))}")
    return by_upper[tag.upper()]


def cache_dir() -> Path:
    """Where downloads are kept: ``$LUCID_HOME/weights``, else torch hub's ``checkpoints`` folder (``$TORCH_HOME/hub``)."""
    home = os.environ.get("LUCID_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    return Path(torch.hub.get_dir()) / "checkpoints"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(name: str, tag: str | None = None, *, url: str | None = None, progress: bool = True) -> Path:
    """The verified local file of weights ``(name, tag)``, downloaded into :func:`cache_dir` if needed.

    ``url`` replaces the registry's URL (a mirror, or ``file://`` in tests); the file must
    still have the registered SHA-256 prefix.
    """
    entry = info(name, tag)
    if url is not None:
        entry = dataclasses.replace(entry, url=url)
    dest = cache_dir() / entry.filename
    if dest.is_file():  # downloaded before, or placed by hand: check it is the published file
        got = _sha256(dest)
        if not got.startswith(entry.sha256):
            raise CheckpointError(
                f"{dest}: SHA-256 {got} does not start with {entry.sha256}, the published prefix for "
                f"{name} {entry.tag!r}; delete the file to download it again"
            )
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:  # writes a temporary file, checks its hash, then renames it into place
        torch.hub.download_url_to_file(entry.url, str(dest), hash_prefix=entry.sha256, progress=progress)
    except RuntimeError as e:
        raise CheckpointError(
            f"{entry.url}: the downloaded file failed its SHA-256 check and was discarded ({e}); "
            "the download was corrupt or the file on the server changed"
        ) from None
    except OSError as e:  # URLError/HTTPError and socket errors are OSErrors
        raise CheckpointError(
            f"could not download the {name} weights {entry.tag!r} from {entry.url} ({getattr(e, 'reason', e)}).\n"
            f"Offline? Fetch that URL on another machine and place the file at {dest} "
            f"(its SHA-256 must start with {entry.sha256}); it will be used from there."
        ) from None
    return dest


def _adapt(model: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """Fit the classifier and first convolution of ``state_dict`` to ``model``, warning about each change.

    A different number of classes (or none: a headless checkpoint) keeps the backbone and
    re-initialises ``fc``; a different number of input channels sums (1 channel) or cycles
    and rescales the first conv's filters.
    """
    own = model.state_dict()
    out = dict(state_dict)
    head = out.get("fc.weight")
    if "fc.weight" in own and (head is None or head.shape != own["fc.weight"].shape):
        model.get_submodule("fc").reset_parameters()
        fresh = model.state_dict()
        out["fc.weight"], out["fc.bias"] = fresh["fc.weight"], fresh["fc.bias"]
        had = "no classifier" if head is None else f"a classifier for {head.shape[0]} classes"
        warnings.warn(
            f"{origin}: the checkpoint has {had} and the model {own['fc.weight'].shape[0]} classes; "
            "loaded the backbone and re-initialised fc (train it before use)",
            stacklevel=3,
        )
    key = "stem.0.weight"
    if key in out and key in own and out[key].shape[1] != own[key].shape[1] and out[key].shape[0] == own[key].shape[0]:
        w = out[key]
        wanted, have = own[key].shape[1], w.shape[1]
        if wanted == 1:
            w = w.sum(dim=1, keepdim=True)
        else:
            w = w.repeat(1, -(-wanted // have), 1, 1)[:, :wanted] * (have / wanted)
        out[key] = w
        warnings.warn(
            f"{origin}: the checkpoint's first convolution takes {have} input channels and the model "
            f"{wanted}; adapted its filters ({'summed' if wanted == 1 else 'cycled and rescaled'})",
            stacklevel=3,
        )
    return out


def load_checkpoint(
    model: nn.Module, checkpoint: str | os.PathLike[str] | Mapping[str, torch.Tensor], source: str = "auto"
) -> nn.Module:
    """Load a torchvision, timm or lucid checkpoint (file or state dict) into a lucid ``model``.

    The layout is converted (see :func:`~lucid.weights.convert`); a classifier of another
    size is replaced by a fresh one and other input channels are adapted, each with a warning.
    Any other mismatch raises :class:`CheckpointError` listing it.
    """
    origin = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "state_dict"
    state_dict = load_file(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    load_into(model, _adapt(model, convert(state_dict, source, to="lucid"), origin))
    return model


def load_pretrained(
    model: nn.Module, preset_name: str, tag: str | None = None, *, url: str | None = None, progress: bool = True
) -> nn.Module:
    """Download (once), verify and load the published weights ``tag`` of ``preset_name`` into ``model``.

    This is what ``resnet_50(pretrained=True)`` and ``resnet_50(weights="IMAGENET1K_V1")`` call.
    ``model`` must have the preset's architecture; ``num_classes``/``in_channels`` may differ
    (see :func:`load_checkpoint`).
    """
    entry = info(preset_name, tag)
    config = getattr(model, "config", None)
    if entry.layout == "torchvision" and config is not None:
        extras = {
            "stem_type": getattr(config, "stem_type", None),
            "avg_down": getattr(config, "avg_down", False),
            "block_args['se']": getattr(config, "block_args", {}).get("se"),
        }
        used = {k: v for k, v in extras.items() if v}
        if used:
            raise ValueError(
                f"{preset_name} weights {entry.tag!r} are torchvision's (plain stem and shortcuts, no squeeze-excite); "
                f"this model sets {', '.join(f'{k}={v!r}' for k, v in used.items())}"
            )
    return load_checkpoint(model, download(preset_name, entry.tag, url=url, progress=progress), source=entry.layout)


set_weights_loader(load_pretrained)
