"""Which preprocessing a loaded model gets: the one saved with it, the one of the published weights it was
loaded with, or the one given on the command line. Never a silent default: a model with none of these is
refused, since feeding it images at the wrong size or normalisation gives wrong answers without an error."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.constants import IMAGENET_MEAN, IMAGENET_STD
from ..core.errors import ConfigError
from ..data.folder import Preprocessing

__all__ = ["PREPROCESS_PRESETS", "resolve_preprocessing"]

# named mean/std presets for models saved without their preprocessing
PREPROCESS_PRESETS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


def _per_channel(values: Sequence[float], channels: int) -> list[float]:
    """Per-channel statistics for ``channels`` channels (the average of RGB for one channel)."""
    values = [float(v) for v in values]
    return [sum(values) / len(values)] if channels == 1 and len(values) != 1 else values


def _from_weights(weights: Any, channels: int, source: str) -> Preprocessing:
    """The evaluation preprocessing of the published weights recorded in ``metadata["weights"]``."""
    if not isinstance(weights, dict):
        raise ConfigError(f"{source}: metadata weights must be a dict, got {type(weights).__name__}", "metadata")
    try:
        crop, resize = int(weights["crop"]), float(weights["resize"])
        data = {"image_size": crop, "channels": channels, "mean": _per_channel(weights["mean"], channels),
                "std": _per_channel(weights["std"], channels), "crop": crop / resize}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"{source}: metadata weights lack a valid crop, resize, mean and std", "metadata") from None
    return Preprocessing.from_dict(data, source=source)


def _from_options(channels: int, image_size: int | None, mean: Sequence[float] | None, std: Sequence[float] | None,
                  preset: str | None, source: str) -> Preprocessing:
    """Preprocessing from ``--image-size`` and ``--mean``/``--std`` or ``--preprocess NAME``."""
    hint = "give --image-size and --mean/--std, or --image-size and --preprocess imagenet"
    if image_size is None or (preset is None and (mean is None or std is None)):
        raise ConfigError(f"{source} was saved without its preprocessing (image size, mean, std); {hint}", "image_size")
    if preset is not None and (mean is not None or std is not None):
        raise ConfigError("--preprocess names mean and std; give it or --mean/--std, not both", "preprocess")
    if preset is not None and preset not in PREPROCESS_PRESETS:
        raise ConfigError(f"--preprocess must be one of {', '.join(PREPROCESS_PRESETS)}, got {preset!r}", "preprocess")
    mean, std = PREPROCESS_PRESETS[preset] if preset is not None else (mean, std)
    data = {"image_size": image_size, "channels": channels, "mean": _per_channel(mean, channels), "std": _per_channel(std, channels)}
    return Preprocessing.from_dict(data, source="--image-size/--mean/--std")


def resolve_preprocessing(metadata: dict[str, Any], channels: int, source: str, image_size: int | None = None,
                          mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                          preset: str | None = None) -> tuple[Preprocessing, str]:
    """The preprocessing for a model whose metadata is ``metadata``, and a note saying where it came from.

    In order: the preprocessing saved by training (``metadata["preprocessing"]``; ``image_size``
    overrides its size), the published weights' (``metadata["weights"]``), else the options
    (``image_size`` with ``mean``/``std`` or a ``preset`` name). A model with none is refused.
    """
    if "preprocessing" in metadata:
        prep = Preprocessing.from_dict(metadata["preprocessing"], source=source)
        if image_size is not None:
            prep.image_size = image_size
        return prep, ""
    if "weights" in metadata and image_size is None and mean is None and std is None and preset is None:
        prep = _from_weights(metadata["weights"], channels, source)
        weights = metadata["weights"]
        return prep, (f"{source} has no saved preprocessing: using its published weights' "
                      f"({weights.get('preset')} {weights.get('tag')}: {prep.image_size} px, crop {prep.crop:.3f})")
    return _from_options(channels, image_size, mean, std, preset, source), ""
