"""What the ``lucid`` subcommands share: ``--set`` parsing, shapes, model loading, the inference options."""
from __future__ import annotations

import argparse
import ast
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.constants import AMP_CHOICES, INFERENCE_DTYPES
from ..core.errors import OptionError

__all__ = [
    "CLIError",
    "Terminated",
    "add_inference_args",
    "add_set",
    "load_model",
    "load_trained_args",
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
    return shape


def positive(args: argparse.Namespace, *names: str) -> None:
    """Refuse a non-positive value of any of the int options ``names``."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive int, got {value}")


def load_model(name_or_path: str, overrides: dict[str, Any] | None = None) -> Any:
    """A model from a preset name (with config overrides) or a ``save_pretrained`` folder."""
    from .. import models

    if Path(name_or_path).exists():
        if overrides:
            raise CLIError("--set applies to preset names, not to a saved model folder")
        return models.from_pretrained(name_or_path)
    if "/" in name_or_path or os.sep in name_or_path:  # preset names never contain one
        raise FileNotFoundError(2, "no such folder; expected a save_pretrained folder or a preset name", name_or_path)
    return models.create_model(name_or_path, **(overrides or {}))


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """The options ``eval`` and ``predict`` share: the model, its input size, device and number format."""
    p.add_argument("checkpoint", metavar="OUT_OR_CHECKPOINT", help="a lucid train output folder, its last.pt, or a weight file (with --model)")
    p.add_argument("--model", default=None, help="preset of a bare weight file")
    add_set(p, "config fields of a bare weight file's preset")
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="input resolution (default: the one saved with the model)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=AMP_CHOICES, default="off", help="autocast for inference (default off: exact fp32)")
    p.add_argument("--dtype", choices=INFERENCE_DTYPES, default=None,
                   help="run lucid.optimize_for_inference at this number format (int8 calibrates on the model's training images); default: the plain model")


def load_trained_args(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The trained model, device and autocast dtype the inference options ask for."""
    from ..inference.predict import load_trained, optimized
    from ..inference.runtime import resolve_amp, resolve_device

    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    trained = load_trained(args.checkpoint, args.model, parse_set(args.set), args.image_size)
    if args.dtype is not None:
        if amp is not None:
            raise CLIError("--dtype and --amp both set the number format; give one of them")
        trained = optimized(trained, args.dtype, device)
    return trained, device, amp
