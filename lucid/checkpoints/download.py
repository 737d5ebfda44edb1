"""Published weights: where each file lives, the cache it is kept in, download and SHA-256 verification.

torchvision's files (``download.pytorch.org``) are kept in a cache folder shared with
torchvision when ``LUCID_HOME`` is not set and checked against the SHA-256 prefix in their
file name; timm's files on the Hugging Face Hub are fetched with ``huggingface_hub`` into its
cache and checked against the SHA-256 the Hub publishes for them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import torch

from ..core.constants import IMAGENET_MEAN, IMAGENET_STD
from ..core.errors import CheckpointError
from ..core.extras import require

__all__ = ["HUB_WEIGHTS_FILE", "PretrainedWeights", "cache_dir", "fetch", "hub_cache_dir", "sha256_of"]

HUB_WEIGHTS_FILE = "model.safetensors"  # the file of a timm model on the Hugging Face Hub


@dataclass(frozen=True)
class PretrainedWeights:
    """One published set of weights for one preset.

    ``sha256`` is the prefix of the file's SHA-256 digest, as published in its file name; for
    weights on the Hugging Face Hub (``hf_hub_id`` set) it may be empty, and the file is then
    checked against the SHA-256 the Hub publishes for it (its LFS object id).
    ``resize``/``crop``/``mean``/``std``/``interpolation`` are the evaluation preprocessing
    the published ``top1``/``top5`` (percent, single crop) were measured with.
    """

    preset: str
    tag: str
    url: str
    sha256: str
    layout: str = "torchvision"
    num_classes: int = 1000
    dataset: str = "ImageNet-1K"
    resize: int = 256
    crop: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    top1: float | None = None
    top5: float | None = None
    recipe: str = ""
    hf_hub_id: str | None = None
    license: str | None = None

    def to_metadata(self) -> dict[str, Any]:
        """What a model loaded with these weights keeps in ``model.metadata["weights"]`` (JSON-ready):
        where they come from, their preprocessing and published accuracy."""
        data = dataclasses.asdict(self)
        data.update(mean=list(self.mean), std=list(self.std))
        return data

    @property
    def filename(self) -> str:
        """Name of the file in the cache folder (the last part of the URL), or in the Hub repository."""
        return HUB_WEIGHTS_FILE if self.hf_hub_id else Path(unquote(urlparse(self.url).path)).name

    def transforms(self) -> Any:
        """The evaluation preprocessing as a torchvision transform (PIL image or uint8 tensor in, normalised float tensor out)."""
        from torchvision.transforms import InterpolationMode, v2  # torchvision: kept out of `import lucid.models`

        return v2.Compose(
            [
                v2.Resize(self.resize, interpolation=InterpolationMode(self.interpolation), antialias=True),
                v2.CenterCrop(self.crop),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(self.mean), list(self.std)),
            ]
        )


def cache_dir() -> Path:
    """Where downloads are kept: ``$LUCID_HOME/weights``, else torch hub's ``checkpoints`` folder (``$TORCH_HOME/hub``)."""
    home = os.environ.get("LUCID_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_cache_dir() -> Path | None:
    """Where Hub downloads are kept: ``$LUCID_HOME/hub``, else huggingface_hub's own cache (``None``)."""
    home = os.environ.get("LUCID_HOME")
    return Path(home).expanduser() / "hub" if home else None


def sha256_of(path: Path) -> str:
    """The SHA-256 digest of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(entry: PretrainedWeights, *, url: str | None = None, progress: bool = True) -> Path:
    """The verified local file of ``entry``, downloaded into :func:`cache_dir` if needed.

    ``url`` replaces the entry's URL (a mirror, or ``file://`` in tests); the file must still
    have the registered SHA-256 prefix. For weights on the Hugging Face Hub, ``url`` is the Hub
    server to ask instead of huggingface.co (``HF_ENDPOINT`` works too).
    """
    if entry.hf_hub_id:
        return _fetch_from_hub(entry, endpoint=url)
    if url is not None:
        entry = dataclasses.replace(entry, url=url)
    dest = cache_dir() / entry.filename
    if dest.is_file():  # downloaded before, or placed by hand: check it is the published file
        got = sha256_of(dest)
        if not got.startswith(entry.sha256):
            raise CheckpointError(
                f"{dest}: SHA-256 {got} does not start with {entry.sha256}, the published prefix for "
                f"{entry.preset} {entry.tag!r}; delete the file to download it again"
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
            f"could not download the {entry.preset} weights {entry.tag!r} from {entry.url} ({getattr(e, 'reason', e)}).\n"
            f"Offline? Fetch that URL on another machine and place the file at {dest} "
            f"(its SHA-256 must start with {entry.sha256}); it will be used from there."
        ) from None
    return dest


def _fetch_from_hub(entry: PretrainedWeights, endpoint: str | None) -> Path:
    """Fetch ``entry``'s file through huggingface_hub and check it against the Hub's SHA-256 (its LFS id,
    which names the file in huggingface_hub's cache) and against ``entry.sha256`` when one is pinned."""
    hub = require("huggingface_hub", "hf", f"weights {entry.tag!r} (on the Hugging Face Hub)")  # extra: hf
    hub_errors = require("huggingface_hub.errors", "hf")  # extra: hf
    try:
        path = Path(hub.hf_hub_download(entry.hf_hub_id, entry.filename, cache_dir=hub_cache_dir(), endpoint=endpoint))
    except (hub_errors.HfHubHTTPError, hub_errors.LocalEntryNotFoundError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"could not download {entry.hf_hub_id}/{entry.filename} from the Hugging Face Hub ({first})") from None
    published = Path(os.path.realpath(path)).name
    if len(published) != 64 or any(c not in "0123456789abcdef" for c in published):
        raise CheckpointError(f"{path}: the Hub gave no SHA-256 for this file (got {published!r}); it cannot be verified")
    got = sha256_of(path)
    if got != published or not got.startswith(entry.sha256):
        expected = published if got != published else f"{entry.sha256}..."
        raise CheckpointError(
            f"{path}: SHA-256 {got} is not the published {expected} of {entry.hf_hub_id}/{entry.filename}; "
            f"the download is corrupt or was changed: delete {Path(os.path.realpath(path))} to fetch it again"
        )
    return path
