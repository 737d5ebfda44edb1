"""What the ``lucid`` subcommands share: ``--set`` parsing, shapes, model loading, the inference options."""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.constants import AMP_CHOICES, INFERENCE_DTYPES, MAX_IMAGE_SIZE
from ..core.errors import OptionError

__all__ = [
    "CLIError",
    "Terminated",
    "add_inference_args",
    "add_set",
    "load_model",
    "load_trained_args",
    "out_of_memory",
    "parse_set",
    "parse_shape",
    "parse_value",
    "positive",
]


class CLIError(OptionError):
    """A mistake in the command line, reported as one line."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (the run saves nothing half-written and says how to resume)."""


def parse_value(text: str) -> Any:
    """Read a ``--set`` value: JSON or Python literals (``10``, ``true``, ``[3,4,6,3]``, ``None``), else a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered.lstrip("+-") in ("nan", "inf", "infinity"):
        return float(lowered)  # a number, refused where numbers must be finite
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return value
    if "," in text:
        return [parse_value(part) for part in text.split(",")]
    return text


def add_set(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str, dest: str = "set") -> None:
    """The ``--set KEY=VALUE ...`` option, the same for every command: values add up over repeats."""
    parser.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", dest=dest, help=f"{help} (repeatable)")


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """Turn ``["num_classes=10", "stem_type=deep"]`` into ``{"num_classes": 10, "stem_type": "deep"}``."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = parse_value(value)
    return overrides


def parse_shape(text: str) -> tuple[int, ...]:
    """Read ``"1,3,224,224"`` (or ``1x3x224x224``) as a tuple of positive ints."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise CLIError(f"--input-shape expects comma-separated positive ints such as 1,3,224,224, got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise CLIError(f"--input-shape expects comma-separated positive ints such as 1,3,224,224, got {text!r}")
    if any(d > MAX_IMAGE_SIZE for d in shape[-2:]):
        raise CLIError(f"--input-shape: height and width must be at most {MAX_IMAGE_SIZE} pixels, got {text!r}")
    return shape


def out_of_memory(error: BaseException) -> str | None:
    """The one-line reason of an allocation that failed (torch's CPU allocator or CUDA out of memory), else None.

    Sizes lucid can foresee are refused before they are allocated; this catches what the
    estimates cannot (memory taken by other programs, a fragmented heap).
    """
    if isinstance(error, MemoryError) and not str(error):
        return "the machine has not enough memory for this request"
    text = str(error)
    if not isinstance(error, RuntimeError) or not ("can't allocate memory" in text or "out of memory" in text.lower()):
        return None
    tried = re.search(r"tried to allocate ([\d.]+ ?[KMGT]?i?B|\d+ bytes)", text)
    return f"tried to allocate {tried.group(1)}" if tried else " ".join(text.split())[:160]


def positive(args: argparse.Namespace, *names: str) -> None:
    """Refuse a non-positive value of any of the int options ``names``."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive int, got {value}")


def load_model(name_or_path: str, overrides: dict[str, Any] | None = None) -> Any:
    """A model from a preset name (with config overrides) or a ``save_pretrained`` folder."""
    from .. import models
    from ..models.limits import check_model_size

    if Path(name_or_path).exists():
        if overrides:
            raise CLIError("--set applies to preset names, not to a saved model folder")
        return models.from_pretrained(name_or_path)
    if "/" in name_or_path or os.sep in name_or_path:  # preset names never contain one
        raise FileNotFoundError(2, "no such folder; expected a save_pretrained folder or a preset name", name_or_path)
    if overrides:
        check_model_size(lambda: models.create_model(name_or_path, **overrides), f"{name_or_path} with --set")
    return models.create_model(name_or_path, **(overrides or {}))


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """The options ``eval`` and ``predict`` share: the model, its input size, device and number format."""
    p.add_argument("checkpoint", metavar="OUT_OR_CHECKPOINT",
                   help="a lucid train output folder, its last.pt, a weight file (with --model), or an exported model (.onnx, .xml, .pte, .pt2)")
    p.add_argument("--model", default=None, help="preset of a bare weight file")
    add_set(p, "config fields of a bare weight file's preset")
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="input resolution (default: the one saved with the model)")
    p.add_argument("--mean", type=float, nargs="+", default=None, metavar="M",
                   help="per-channel mean, for a model saved without its preprocessing (with --image-size and --std)")
    p.add_argument("--std", type=float, nargs="+", default=None, metavar="S", help="per-channel std (see --mean)")
    p.add_argument("--preprocess", choices=("imagenet",), default=None,
                   help="named mean/std for a model saved without its preprocessing (with --image-size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_CHOICES, default="off", help="autocast for inference (default off: exact fp32)")
    p.add_argument("--dtype", choices=INFERENCE_DTYPES, default=None,
                   help="run lucid.optimize_for_inference at this number format (int8 calibrates on the model's training images); default: the plain model")


def load_trained_args(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The trained model, device and autocast dtype the inference options ask for."""
    from ..inference.artefacts import is_artefact
    from ..inference.predict import load_trained, optimized
    from ..inference.runtime import resolve_amp, resolve_device
    from ..models.limits import check_input_memory

    if is_artefact(args.checkpoint):
        return _load_artefact_args(args)
    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    trained = load_trained(args.checkpoint, args.model, parse_set(args.set), args.image_size, args.mean, args.std, args.preprocess)
    _say_where_preprocessing_came_from(trained)
    size = trained.preprocessing.image_size
    shape = (getattr(args, "batch_size", 1), trained.preprocessing.channels, size, size)
    check_input_memory(trained.model, shape, "--batch-size and --image-size", device)
    if args.dtype is not None:
        if amp is not None:
            raise CLIError("--dtype and --amp both set the number format; give one of them")
        trained = optimized(trained, args.dtype, device)
        if trained.calibration_images is not None:
            print(f"int8: calibrated on {trained.calibration_images} training image(s) of the model", file=sys.stderr)
    return trained, device, amp


def _load_artefact_args(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """An exported model in its own runtime (on the CPU, at the number format it was exported in)."""
    import torch

    from ..inference.artefacts import load_artefact

    for option, value in (("--model", args.model), ("--set", args.set), ("--dtype", args.dtype)):
        if value:
            raise CLIError(f"{option} does not apply to an exported model ({args.checkpoint}): it is fixed when exporting")
    if args.amp != "off":
        raise CLIError(f"--amp does not apply to an exported model ({args.checkpoint}): it runs at the dtype it was exported in")
    if args.device not in ("auto", "cpu"):
        raise CLIError(f"--device {args.device}: exported models run on the CPU in their own runtime")
    trained = load_artefact(args.checkpoint, args.image_size, args.mean, args.std, args.preprocess)
    _say_where_preprocessing_came_from(trained)
    return trained, torch.device("cpu"), None


def _say_where_preprocessing_came_from(trained: Any) -> None:
    if trained.note:
        print(f"note: {trained.note}", file=sys.stderr)
