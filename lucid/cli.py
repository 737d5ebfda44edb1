"""The ``lucid`` command line: one entry point, one subcommand per job.

Every subcommand is declared by an ``_add_<name>`` function below (its arguments) and
runs through a ``_run_<name>`` function that calls into the library. Library modules
are imported inside the ``_run_`` functions so that ``lucid --help`` stays fast.
Errors the user can fix are printed as one line with a non-zero exit; set
``LUCID_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["main", "CLIError", "parse_set", "parse_shape", "load_model"]


class CLIError(Exception):
    """A mistake in the command line, reported as one line."""


# --------------------------------------------------------------------- shared helpers


def _parse_value(text: str) -> Any:
    """Read a ``--set`` value: JSON or Python literals (``10``, ``true``, ``[3,4,6,3]``, ``None``), else a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return value
    if "," in text:
        return [_parse_value(part) for part in text.split(",")]
    return text


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """Turn ``["num_classes=10", "stem_type=deep"]`` into ``{"num_classes": 10, "stem_type": "deep"}``."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = _parse_value(value)
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


def load_model(name_or_path: str, overrides: dict[str, Any] | None = None) -> Any:
    """A model from a preset name (with config overrides) or a ``save_pretrained`` folder."""
    from . import models

    if Path(name_or_path).exists():
        if overrides:
            raise CLIError("--set applies to preset names, not to a saved model folder")
        return models.from_pretrained(name_or_path)
    return models.create_model(name_or_path, **(overrides or {}))


# ------------------------------------------------------------------------- subcommands
# Each _add_<name>(sub) declares a subcommand and sets `func` to its _run_<name>.


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model presets")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'resnext*'")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from .models import list_models

    names = list_models(args.pattern)
    if not names:
        raise CLIError(f"no model matches {args.pattern!r}")
    print("\n".join(names))
    return 0


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_models]


# ------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="lucid", description="ResNet/ResNeXt models on PyTorch: inspect, train, evaluate, export.")
    parser.add_argument("--version", action="version", version=f"lucid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from .weights.io import CheckpointError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"lucid {args.command}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, CheckpointError, ValueError, TypeError, FileNotFoundError, NotADirectoryError) as e:
        if os.environ.get("LUCID_DEBUG"):
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"lucid {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
