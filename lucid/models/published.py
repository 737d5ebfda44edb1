"""The published weights of each preset, by tag: register, list, look up, download and load them.

The presets table registers its rows' weights here when it is imported; a user adds a mirror
or their own weights with :func:`register_pretrained`. Files are fetched and loaded through
:mod:`lucid.checkpoints`.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from ..checkpoints.download import PretrainedWeights, fetch
from ..checkpoints.loading import load_checkpoint
from ..core.errors import CheckpointError, ConfigError, ConfigTypeError
from .registry import get_preset

__all__ = ["download", "info", "list_pretrained", "load_pretrained", "register_pretrained", "temporary_registrations"]

_WEIGHTS: dict[str, dict[str, PretrainedWeights]] = {}  # preset name -> tag -> weights
_DEFAULT_TAG: dict[str, str] = {}


def register_pretrained(weights: PretrainedWeights, default: bool = False) -> PretrainedWeights:
    """Add (or replace) ``weights`` under ``(weights.preset, weights.tag)``.

    ``default=True`` (or being the preset's first tag) makes it what ``pretrained=True`` loads.
    Use it for a mirror or your own published weights; ``file://`` URLs work.
    """
    if not isinstance(weights, PretrainedWeights):
        raise ConfigTypeError(f"weights must be a PretrainedWeights, got {type(weights).__name__}", "weights")
    hub_checked = weights.hf_hub_id is not None and weights.sha256 == ""
    if not hub_checked and not (len(weights.sha256) >= 8 and all(c in "0123456789abcdef" for c in weights.sha256)):
        raise ConfigError(f"sha256 must be at least 8 lowercase hex digits of the file's SHA-256, got {weights.sha256!r}", "sha256")
    _WEIGHTS.setdefault(weights.preset, {})[weights.tag] = weights
    if default or weights.preset not in _DEFAULT_TAG:
        _DEFAULT_TAG[weights.preset] = weights.tag
    return weights


@contextlib.contextmanager
def temporary_registrations() -> Iterator[None]:
    """Undo, on leaving the block, every :func:`register_pretrained` made inside it (tests, trial mirrors)."""
    saved = copy.deepcopy(_WEIGHTS), dict(_DEFAULT_TAG)
    try:
        yield
    finally:
        _WEIGHTS.clear()
        _WEIGHTS.update(saved[0])
        _DEFAULT_TAG.clear()
        _DEFAULT_TAG.update(saved[1])


def list_pretrained(name: str | None = None) -> list[str]:
    """Tags published for preset ``name`` (default first), or, without a name, the presets that have weights."""
    if name is None:
        return sorted(_WEIGHTS)
    get_preset(name)  # unknown names raise with suggestions
    tags = _WEIGHTS.get(name, {})
    return sorted(tags, key=lambda t: (t != _DEFAULT_TAG.get(name), t))


def info(name: str, tag: str | None = None) -> PretrainedWeights:
    """The registry entry for preset ``name`` and ``tag`` (``None`` or ``"DEFAULT"``: the default tag)."""
    get_preset(name)
    tags = _WEIGHTS.get(name)
    if not tags:
        raise CheckpointError(f"no published weights for {name!r}; presets with weights: {', '.join(list_pretrained())}")
    if tag is not None and not isinstance(tag, str):
        raise ConfigTypeError(f"weights must be a tag name such as 'IMAGENET1K_V1' (or use pretrained=True), got {tag!r}", "weights")
    if tag is None or tag.upper() == "DEFAULT":
        return tags[_DEFAULT_TAG[name]]
    by_upper = {t.upper(): w for t, w in tags.items()}
    if tag.upper() not in by_upper:
        raise ConfigError(f"weights={tag!r} is not a tag of {name!r}; its tags: {', '.join(list_pretrained(name))}", "weights")
    return by_upper[tag.upper()]


def download(name: str, tag: str | None = None, *, url: str | None = None, progress: bool = True) -> Path:
    """The verified local file of weights ``(name, tag)``, downloaded into the cache if needed.

    ``url`` replaces the registry's URL (a mirror, or ``file://`` in tests); the file must
    still have the registered SHA-256 prefix. For weights on the Hugging Face Hub, ``url`` is
    the Hub server to ask instead of huggingface.co (``HF_ENDPOINT`` works too).
    """
    return fetch(info(name, tag), url=url, progress=progress)


def load_pretrained(
    model: nn.Module, preset_name: str, tag: str | None = None, *, url: str | None = None, progress: bool = True
) -> nn.Module:
    """Download (once), verify and load the published weights ``tag`` of ``preset_name`` into ``model``.

    This is what ``resnet_50(pretrained=True)`` and ``resnet_50(weights="IMAGENET1K_V1")`` call.
    ``model`` must have the preset's architecture; ``num_classes``/``in_channels`` may differ
    (see :func:`~lucid.checkpoints.load_checkpoint`).
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
            raise ConfigError(
                f"{preset_name} weights {entry.tag!r} are torchvision's (plain stem and shortcuts, no squeeze-excite); "
                f"this model sets {', '.join(f'{k}={v!r}' for k, v in used.items())}"
            )
    load_checkpoint(model, fetch(entry, url=url, progress=progress), source=entry.layout)
    model.metadata = {**(getattr(model, "metadata", None) or {}), "weights": entry.to_metadata()}
    return model
