"""The one current result file of a benchmark script: ``benchmarks/results/NAME.log``.

A result file starts with a header of ``# key: value`` lines (the date, the machine, the torch
version, the exact command, then one ``# figure:`` line per headline figure) and goes on with
everything the script printed. A new run of the same command replaces the file; earlier runs
live in git. ``benchmarks/make_index.py`` builds ``benchmarks/results/README.md`` from the headers.

Benchmark scripts import this module as ``import _results`` (Python puts a script's own folder
first on ``sys.path``) and import lucid as an installed package.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from lucid.benchmark import machine_summary
from lucid.core.fileio import atomic_write_text

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results"
KEYS = ("date", "machine", "torch", "command")
ENVIRONMENT = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def add_result_option(parser: argparse.ArgumentParser, default: str) -> None:
    """``--result NAME``: the file the run writes, ``benchmarks/results/NAME.log`` (``-`` for none)."""
    parser.add_argument("--result", default=default, metavar="NAME",
                        help=f"write benchmarks/results/NAME.log (default: {default}; '-' writes no file)")


def command(argv: list[str] | None = None) -> str:
    """The command line that ran this script, with the environment variables that change its speed."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    shown = f"benchmarks/{script.relative_to(BENCHMARKS)}" if script.is_relative_to(BENCHMARKS) else argv[0]
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in ENVIRONMENT if k in os.environ]
    return " ".join([*env, "python", shlex.join([shown, *argv[1:]])])


def header(machine: str, figures: list[str], argv: list[str] | None = None) -> str:
    """The header lines of a result file measured now on ``machine``."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# date: {date}", f"# machine: {machine}", f"# torch: {torch.__version__}", f"# command: {command(argv)}"]
    lines += [f"# figure: {figure}" for figure in figures]
    return "\n".join(lines) + "\n"


def read_header(path: Path) -> dict[str, object]:
    """The header of a result file: ``{"date", "machine", "torch", "command": str, "figures": [str]}``."""
    found: dict[str, object] = {"figures": []}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# ") or ": " not in line:
            break
        key, value = line[2:].split(": ", 1)
        if key == "figure":
            found["figures"].append(value)  # type: ignore[union-attr]
        elif key in KEYS:
            found[key] = value
    missing = [k for k in KEYS if k not in found]
    if missing:
        raise ValueError(f"{path}: the result header lacks {missing}; expected '# key: value' lines for {list(KEYS)}")
    return found


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, terminal: io.TextIOBase) -> None:
        self.terminal = terminal
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.terminal.write(text)

    def flush(self) -> None:
        self.terminal.flush()


@contextlib.contextmanager
def recording(name: str, device: torch.device | str = "cpu") -> Iterator[list[str]]:
    """Copy what the block prints into ``benchmarks/results/<name>.log`` under a header.

    Yields a list to which the script appends its headline figures (one line each). The file is
    written once, atomically, when the block ends without an error; ``name`` ``"-"`` writes none.
    """
    figures: list[str] = []
    if name == "-":
        yield figures
        return
    tee = _Tee(sys.stdout)  # type: ignore[arg-type]
    with contextlib.redirect_stdout(tee):
        yield figures
    path = RESULTS / f"{name}.log"
    machine = machine_summary(device).split("; torch ")[0]  # the torch version has its own line
    atomic_write_text(path, header(machine, figures) + "\n" + tee.copy.getvalue())
    print(f"wrote {path}", file=sys.stderr)
