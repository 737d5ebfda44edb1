"""Published ImageNet weights for the presets: a registry per tag, download, verify, convert, load.

The weights are torchvision's own files (``download.pytorch.org``), kept in a cache folder
shared with torchvision when ``LUCID_HOME`` is not set and checked against the SHA-256 prefix
in their file name, and timm's files on the Hugging Face Hub (tags ``"timm:<name>"``), fetched
with ``huggingface_hub`` into its cache and checked against the SHA-256 the Hub publishes for
them. Either is renamed to the lucid layout and loaded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..core.checks import describe
from ..core.constants import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported for older imports)
from ..core.errors import CheckpointError, OptionError
from ..io import load_file, load_into, strip_prefix
from ..models.presets import PRESETS, PretrainedWeights
from ..models.registry import get_preset, set_weights_loader
from .conversion import convert

__all__ = [
    "PretrainedWeights",
    "cache_dir",
    "download",
    "hub_cache_dir",
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
    hub_checked = weights.hf_hub_id is not None and weights.sha256 == ""
    if not hub_checked and not (len(weights.sha256) >= 8 and all(c in "0123456789abcdef" for c in weights.sha256)):
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
    still have the registered SHA-256 prefix. For weights on the Hugging Face Hub, ``url`` is
    the Hub server to ask instead of huggingface.co (``HF_ENDPOINT`` works too).
    """
    entry = info(name, tag)
    if entry.hf_hub_id:
        return _download_from_hub(entry, endpoint=url)
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


def hub_cache_dir() -> Path | None:
    """Where Hub downloads are kept: ``$LUCID_HOME/hub``, else huggingface_hub's own cache (``None``)."""
    home = os.environ.get("LUCID_HOME")
    return Path(home).expanduser() / "hub" if home else None


def _download_from_hub(entry: PretrainedWeights, endpoint: str | None) -> Path:
    """Fetch ``entry``'s file through huggingface_hub and check it against the Hub's SHA-256 (its LFS id,
    which names the file in huggingface_hub's cache) and against ``entry.sha256`` when one is pinned."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - the test environment has it
        raise ImportError(f"weights {entry.tag!r} live on the Hugging Face Hub: pip install 'lucid[hf]'") from None
    try:
        path = Path(hf_hub_download(entry.hf_hub_id, entry.filename, cache_dir=hub_cache_dir(), endpoint=endpoint))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"could not download {entry.hf_hub_id}/{entry.filename} from the Hugging Face Hub ({first})") from None
    published = Path(os.path.realpath(path)).name
    if len(published) != 64 or any(c not in "0123456789abcdef" for c in published):
        raise CheckpointError(f"{path}: the Hub gave no SHA-256 for this file (got {published!r}); it cannot be verified")
    got = _sha256(path)
    if got != published or not got.startswith(entry.sha256):
        expected = published if got != published else f"{entry.sha256}..."
        raise CheckpointError(
            f"{path}: SHA-256 {got} is not the published {expected} of {entry.hf_hub_id}/{entry.filename}; "
            f"the download is corrupt or was changed: delete {Path(os.path.realpath(path))} to fetch it again"
        )
    return path


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
    model: nn.Module,
    checkpoint: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    source: str = "auto",
    prefix: str | None = None,
) -> nn.Module:
    """Load a torchvision, timm or lucid checkpoint (file or state dict) into a lucid ``model``.

    Checkpoints of trainers and wrappers load as they are: a Lightning ``.ckpt`` (its
    ``state_dict``, keys under ``model.``), DistributedDataParallel's ``module.``,
    ``torch.compile``'s ``_orig_mod.``, a detector's ``backbone.``; ``prefix`` picks the keys
    under any other (``"student."``). The layout is converted (see
    :func:`~lucid.weights.convert`); a classifier of another size is replaced by a fresh one
    and other input channels are adapted, each with a warning. Any other mismatch raises
    :class:`CheckpointError` listing it.
    """
    if not isinstance(model, nn.Module):
        raise OptionError(f"model must be a lucid model (a torch.nn.Module); got {describe(model)}", "model")
    if not isinstance(checkpoint, (str, os.PathLike, Mapping)):
        raise OptionError(f"checkpoint must be a weight file path or a state dict; got {describe(checkpoint)}", "checkpoint")
    origin = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "state_dict"
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = load_file(checkpoint, strip_prefixes=False)
    state_dict = strip_prefix(checkpoint, prefix)
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
    load_checkpoint(model, download(preset_name, entry.tag, url=url, progress=progress), source=entry.layout)
    model.metadata = {**(getattr(model, "metadata", None) or {}), "weights": entry.to_metadata()}
    return model


set_weights_loader(load_pretrained)
