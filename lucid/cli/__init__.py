"""The ``lucid`` command line: one entry point, one module per subcommand.

Each module (``models``, ``summary``, ``export``, ``train``, ``evaluate``, ``predict``, ``plot``,
``bench``, ``weights``) declares its arguments in ``add`` and runs through ``run``, which calls into
the library; library modules are imported inside ``run`` so that ``lucid --help`` stays fast.
lucid's own errors (:class:`lucid.core.errors.LucidError`: a bad option, config, checkpoint,
dataset or a missing optional package) and ``OSError`` (with its path) are printed as one line
with exit status 2, the field a library error names shown as its flag. Anything else (an
exception from inside torch, a wrong call) is a bug and shows its traceback. Set
``LUCID_DEBUG=1`` to see the traceback of every error.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.errors import LucidError
from . import bench, data, evaluate, export, models, plot, predict, summary, train, weights
from .common import CLIError, Terminated, load_model, parse_set, parse_shape

__all__ = ["CLIError", "build_parser", "load_model", "main", "parse_set", "parse_shape"]

_COMMANDS = [models, summary, export, train, evaluate, predict, plot, bench, weights, data]


def build_parser() -> argparse.ArgumentParser:
    """The ``lucid`` argument parser, one subcommand per module of this package."""
    parser = argparse.ArgumentParser(prog="lucid", description="ResNet/ResNeXt models on PyTorch: inspect, train, evaluate, export.")
    parser.add_argument("--version", action="version", version=f"lucid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add(sub)
    return parser


def _flag(parser: argparse.ArgumentParser, command: str, field: str) -> str:
    """The option of ``command`` that sets ``field``; a model config field is set with ``--set``."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {a.dest: a.option_strings[0] for a in subparsers.choices[command]._actions if a.option_strings}
    if field in options:
        return options[field]
    return f"--set {field}" if "--set" in options.values() else field


def _message(parser: argparse.ArgumentParser, command: str, error: BaseException) -> str:
    """One line for the user: an OSError names its path; a field named by the library becomes its flag."""
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    message = " ".join(str(error).split()) or type(error).__name__
    field = getattr(error, "field", None)
    if field and message.startswith(field):
        message = _flag(parser, command, field) + message[len(field):]
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        print(f"lucid {args.command}: {'terminated' if isinstance(e, Terminated) else 'interrupted'}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except Exception as e:
        if os.environ.get("LUCID_DEBUG") or not isinstance(e, (LucidError, OSError)):
            raise
        print(f"lucid {args.command}: error: {_message(parser, args.command, e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
